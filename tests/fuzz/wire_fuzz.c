/* libFuzzer target: the wire verifier on arbitrary bytes. Whatever it accepts must be
 * readable in full (the JSON printer walks every field through the accessors). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null;
	if (!null)
		null = fopen("/dev/null", "w");
	/* A copy of exactly size bytes (malloc aligns to 16), so ASan catches a read even one
	 * byte past the end; rounding the size up would hide over-reads of up to 7 bytes. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	struct fb_verify_opts opts = { .max_size = 1 << 20 };
	if (rw_Message_verify_ex(buf, size, &opts, NULL) == 0 && null)
		rw_Message_to_json(buf, null);
	free(buf);
	return 0;
}
