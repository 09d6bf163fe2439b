/* What the parts of the image/layer store share (image_int.h): how one img_resolve call
 * reports its first failure and its progress, and the small helpers: a file read whole, a
 * tree removed without following its symlinks, a directory opened or made, a sha256 in hex. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_int.h"

/* Records the first failure as "image SPEC: [layer DIGEST: ]what" and returns rc. */
int img__fail(struct res *r, int rc, const char *fmt, ...)
{
	if (r->errsz == 0 || r->err[0])
		return rc;
	int n = r->layer ? snprintf(r->err, r->errsz, "image %s: layer %s: ", r->spec, r->layer)
			 : snprintf(r->err, r->errsz, "image %s: ", r->spec);
	if (n >= 0 && (size_t)n < r->errsz) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errsz - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

const char *img__errstr(int rc, char *buf, size_t len)
{
	return strerror_r(-rc, buf, len);
}

void img__progress(struct res *r, uint64_t index, uint64_t n, uint64_t done, uint64_t total)
{
	if (r->fn)
		r->fn(r->arg, r->spec, r->layer, index, n, done, total);
}

static void hex_of(const unsigned char *md, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = 0;
}

int img__sha256_final(EVP_MD_CTX *md, char hex[65])
{
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (!EVP_DigestFinal_ex(md, sum, &len) || len != 32)
		return -EIO;
	hex_of(sum, hex);
	return 0;
}

/* Reads all of fd (at most max bytes, else -EFBIG) into a NUL-terminated buffer. */
int img__read_all(int fd, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				free(buf);
				return -EFBIG;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*out = buf;
	*outlen = len;
	return 0;
}

/* Removes name (a file or a whole tree) under at without following a symlink. Trees are
 * ours (IMG_MAX_DEPTH bounds them), so recursion depth and fds stay bounded. */
int img__rm_tree_at(int at, const char *name)
{
	if (unlinkat(at, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int r = img__rm_tree_at(dirfd(d), de->d_name);
		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Opens (making it if missing) directory name under at. */
int img__open_dir(int at, const char *name, mode_t mode)
{
	if (mkdirat(at, name, mode) < 0 && errno != EEXIST)
		return -errno;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

bool img__ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}
