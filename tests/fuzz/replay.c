/* Replays a fuzz target's corpus as an ordinary test: every file in the directories
 * given on the command line is fed to LLVMFuzzerTestOneInput once. Built with any
 * compiler, so the corpus runs under ctest (and under ASan in CI) without libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	size_t files = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			FILE *f = fopen(path, "rb");
			if (!f)
				continue;
			uint8_t *buf = malloc(1 << 20);
			size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
			fclose(f);
			if (!buf)
				return 1;
			LLVMFuzzerTestOneInput(buf, n);
			free(buf);
			files++;
		}
		closedir(d);
	}
	printf("replayed %zu inputs\n", files);
	return files ? 0 : 1;
}
