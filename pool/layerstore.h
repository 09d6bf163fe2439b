/* The content-addressed layer store of the image/layer store (layerstore.c): each OCI layer
 * unpacked once into <state>/layers/sha256/<hex>/ and shared by every image that has it.
 * Internal: only the store's own files include it. */
#ifndef ROLLOUT_POOL_LAYERSTORE_H
#define ROLLOUT_POOL_LAYERSTORE_H

#include <stdint.h>
#include <sys/types.h>

#include "image_int.h"

/* Two threads that need the same layer: the second waits here until the first is done, then
 * finds it published. Keyed by the store directory, so separate stores do not wait on each
 * other. Across processes, rename(RENAME_NOREPLACE) keeps one copy. The same wait serves a
 * mount point (fsimage.c): the directory is then <state>/mnt, hex the mount point's name.
 * The caller owns the struct (on its stack) from claim to release. */
struct busy {
	dev_t dev;
	ino_t ino;
	char hex[65];
	struct busy *next;
};

/* Waits until no other thread of this process holds hex in the directory open at at, then
 * holds it. 0 or -errno (at cannot be stat'ed). */
int layerstore_claim(int at, const char *hex, struct busy *b);
/* Lets go of what layerstore_claim took and wakes the waiters. */
void layerstore_release(struct busy *b);

/* Opens <base>/layers and <base>/layers/sha256 (made when missing) into r->store and r->sha,
 * which the caller closes. 0 or -errno with the message in r. */
int layerstore_open(struct res *r, const char *base);
/* Removes what a crashed resolve left in r->store (tmp.* of a dead process, or of ours but
 * of no layer being unpacked now). Failures are ignored: what stays is tried again next time. */
void layerstore_sweep(struct res *r);
/* Makes layer d (index of n) present as r->sha/<hex>: found published (a single progress
 * call, the blob not read again), or unpacked from r->layout's blob and published, once
 * however many threads ask at the same time. 0 or -errno with the message in r; nothing of
 * a failed layer is left behind. */
int layerstore_get(struct res *r, const struct desc *d, uint64_t index, uint64_t n);
/* Bytes the tree open at at takes on disk (0 when it cannot be read). */
uint64_t layerstore_bytes(int at);

#endif
