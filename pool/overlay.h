/* Image sandboxes' roots, inside the sandbox runtime (overlay.c). Only sandbox.c and
 * overlay.c include this; sandbox.h declares what the zygote calls (idmap_get,
 * sbx_idmap_fill). */
#ifndef ROLLOUT_POOL_OVERLAY_H
#define ROLLOUT_POOL_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#include "sandbox.h"

/* Mounts an image sandbox's root at <staging>/r (path in root): a tmpfs of disk_mb on the
 * staging directory holds the upper and work directories; the snapshot layers of from (top
 * first, or none) and the image's layers are mounted idmapped through idmap, read-only,
 * nosuid, nodev; the upper directory is kept open as SBX_UPPER_FD. Runs in the new
 * sandbox's mount namespace, before pivot_root. 0 or -errno. */
int sbx_image_root(const struct sbx_runtime *rt, const struct sbx_profile *p, const struct sbx_from *from,
		   int idmap, uint32_t uid, char *root, size_t cap);
/* Writes s to the file at path (a /proc map or setting): 0 or -errno. */
int sbx_write_str(const char *path, const char *s);

#endif
