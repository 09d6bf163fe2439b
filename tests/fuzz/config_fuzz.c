/* libFuzzer target: both daemons' config loaders (parse + validate) on arbitrary bytes.
 * Whatever they accept or refuse, they must not crash, leak or read out of bounds, and a
 * refusal must come with a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"      /* coordinator: rd_config_* */
#include "pool_config.h" /* pool: pool_config_* */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("config-fuzz", MFD_CLOEXEC);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char path[64], err[1024];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct rd_cfg *rc;
	err[0] = 0;
	if (rd_config_load(path, &rc, err, sizeof(err)) == 0)
		rd_config_free(rc);
	else if (!err[0])
		abort(); /* a refusal without a message */
	struct pool_cfg *pc;
	err[0] = 0;
	if (pool_config_load(path, &pc, err, sizeof(err)) == 0)
		pool_config_free(pc);
	else if (!err[0])
		abort();
	close(fd);
	return 0;
}
