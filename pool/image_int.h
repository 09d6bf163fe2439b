/* What the parts of the image/layer store share: one img_resolve call as they all see it,
 * a checked content descriptor, and the small file and digest helpers of image_util.c. Only
 * the store's own files include it (image.c, layer.c, layerstore.c, imguser.c, fsimage.c). */
#ifndef ROLLOUT_POOL_IMAGE_INT_H
#define ROLLOUT_POOL_IMAGE_INT_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "image.h"

#define IMG_MAX_DEPTH 128 /* directories in an entry's path: bounds our fds when walking */
#define OPAQUE_XATTR  "trusted.overlay.opaque"

/* One img_resolve call. */
struct res {
	const char *spec;
	const char *layer; /* digest of the layer being worked on, for messages; NULL */
	char *err;
	size_t errsz;
	img_progress_fn fn;
	void *arg;
	int layout; /* the OCI layout directory */
	int store;  /* <state>/layers */
	int sha;    /* <state>/layers/sha256 */
	uint64_t skipped;
};

/* A content descriptor from index.json or a manifest, checked. */
struct desc {
	const char *media; /* owned by the JSON it came from */
	char digest[72];   /* "sha256:<hex>" */
	char hex[65];
	uint64_t size;
};

/* Records the first failure as "image SPEC: [layer DIGEST: ]what" and returns rc. */
int img__fail(struct res *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* strerror of -rc, in buf. */
const char *img__errstr(int rc, char *buf, size_t len);
/* Calls the call's img_progress_fn, if any, for the layer r->layer. */
void img__progress(struct res *r, uint64_t index, uint64_t n, uint64_t done, uint64_t total);

/* Finishes md into 64 lowercase hex digits. 0 or -EIO. */
int img__sha256_final(EVP_MD_CTX *md, char hex[65]);
/* Reads all of fd (at most max bytes, else -EFBIG) into a NUL-terminated buffer the caller
 * frees. 0 or -errno. */
int img__read_all(int fd, size_t max, char **out, size_t *outlen);
/* Removes name (a file or a whole tree) under at without following a symlink. 0 or -errno. */
int img__rm_tree_at(int at, const char *name);
/* Opens (making it if missing) directory name under at. An fd, or -errno. */
int img__open_dir(int at, const char *name, mode_t mode);
bool img__ends_with(const char *s, const char *suffix);

#endif
