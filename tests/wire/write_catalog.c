/* write_catalog DIR: writes every catalog message to DIR/<name>.bin for the interop
 * checks with flatc and Python. */
#include <stdio.h>
#include <stdlib.h>

#include "catalog.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: write_catalog DIR\n");
		return 2;
	}
	static _Alignas(8) unsigned char buf[1 << 16];
	for (size_t i = 0; i < wt_catalog_len; i++) {
		ssize_t n = wt_catalog[i].build(buf, sizeof(buf));
		if (n < 0) {
			fprintf(stderr, "%s: build failed: %zd\n", wt_catalog[i].name, n);
			return 1;
		}
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s.bin", argv[1], wt_catalog[i].name);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(buf, 1, (size_t)n, f) != (size_t)n || fclose(f)) {
			perror(path);
			return 1;
		}
	}
	return 0;
}
