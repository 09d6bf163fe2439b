/* Unpacking one OCI layer (layer.c): a tar, plain, gzip or zstd, read from its blob into a
 * directory, with whiteouts in overlayfs format. Internal to the image/layer store; the
 * store (layerstore.c) decides where the directory is and publishes it. */
#ifndef ROLLOUT_POOL_LAYER_H
#define ROLLOUT_POOL_LAYER_H

#include <stdint.h>

#include "image_int.h"

/* Unpacks the blob open at fd (layer d, index of n, for progress) into the empty directory
 * open at root, hashing it on the way: 0 once every entry is written and the blob's digest
 * and size match d. Refuses the whole layer on the first hostile entry (an absolute path,
 * "..", a path through a symlink, a hardlink out of the layer), on a digest or size mismatch
 * and on an unreadable tar: -errno, with the message in r; root then holds a partial tree
 * the caller removes. Device nodes, fifos and sockets are left out and counted in
 * r->skipped, set-id bits cleared, extended attributes from the tar not applied. Ownership
 * from the tar only as root. Does not close fd or root. */
int layer_extract(struct res *r, const struct desc *d, int fd, int root, uint64_t index, uint64_t n);

#endif
