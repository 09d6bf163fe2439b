/* `rolloutctl wire dump FILE|-`: verifies one wire message and prints it as JSON, in the
 * shape `flatc --json --strict-json` prints, or says precisely why it is invalid. This is
 * how people look at captured records. */
#include "rolloutctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout_wire.h"

#define DUMP_MAX_BYTES (64u << 20)

/* Reads the whole input into 8-byte aligned memory (the verifier requires it). */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f)
		return -errno;
	size_t cap = 4096, n = 0;
	uint8_t *buf = aligned_alloc(8, cap);
	int rc = 0;
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap) {
			if (ferror(f))
				rc = -EIO;
			break;
		}
		if (cap >= DUMP_MAX_BYTES) {
			rc = -EFBIG;
			break;
		}
		uint8_t *bigger = aligned_alloc(8, cap * 2);
		if (bigger)
			memcpy(bigger, buf, n);
		free(buf);
		buf = bigger;
		cap *= 2;
	}
	if (f != stdin)
		fclose(f);
	if (!buf)
		return -ENOMEM;
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int dump(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = slurp(path, &buf, &len);
	if (rc) {
		fprintf(stderr, "rolloutctl: %s: %s\n", path, strerror(-rc));
		return 1;
	}
	struct fb_verify_result res;
	rc = rw_Message_verify_ex(buf, len, NULL, &res);
	if (rc) {
		fprintf(stderr, "rolloutctl: %s: invalid message (%zu bytes): %s at offset %u: %s\n", path,
			len, fb_verify_err_name(res.error), res.offset, fb_verify_strerror(res.error));
		free(buf);
		return 1;
	}
	rc = rw_Message_to_json(buf, stdout);
	free(buf);
	if (rc || fflush(stdout)) {
		fprintf(stderr, "rolloutctl: writing output failed\n");
		return 1;
	}
	return 0;
}

int rolloutctl_wire(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "dump"))
		return dump(argv[2]);
	fprintf(stderr, "usage: rolloutctl wire dump FILE|-\n"
			"  Verifies one FlatBuffers message of wire/rollout.fbs and prints it as JSON.\n");
	return 2;
}
