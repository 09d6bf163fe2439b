/* The image's User as a uid and gid, looked up in the image's own /etc (imguser.c; the
 * public img_set_user is there too). Internal to the image/layer store. */
#ifndef ROLLOUT_POOL_IMGUSER_H
#define ROLLOUT_POOL_IMGUSER_H

#include "image_int.h"

/* Sets img->uid and img->gid from img->user ("uid", "name", either with ":gid" or
 * ":group"), reading /etc/passwd and /etc/group through img's layers, top layer first; leaves
 * them as they are when img->user is NULL. Call once the layers are in place. 0 or -errno
 * with the message in r. */
int imguser_resolve(struct res *r, struct img *img);

#endif
