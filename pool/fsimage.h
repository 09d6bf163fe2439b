/* erofs and squashfs images of the image/layer store (fsimage.c): one read-only mount,
 * no config. Internal: only the store's own files include it. */
#ifndef ROLLOUT_POOL_FSIMAGE_H
#define ROLLOUT_POOL_FSIMAGE_H

#include "image_int.h"

/* Resolves the file r->spec (a name ending in .erofs, else taken as squashfs) into out: id
 * and bytes from its contents, one layer, the mount point under base (the state directory,
 * an absolute path). Mounts it, which needs root, unless a mount is already there. 0 or
 * -errno with the message in r; what out then holds the caller frees (img_free). */
int fsimage_resolve(struct res *r, const char *base, struct img *out);

#endif
