/* Loop devices for rollout-pool's filesystem images (fsimage.c): attach a file read-only to a
 * free loop device and mount it read-only, nosuid, nodev. */
#ifndef ROLLOUT_POOL_LOOPDEV_H
#define ROLLOUT_POOL_LOOPDEV_H

#include <stddef.h>

/* Force the pre-5.8 path (LOOP_SET_FD + LOOP_SET_STATUS64) instead of LOOP_CONFIGURE. */
#define LOOPDEV_LEGACY 1u

/* Attaches the file open at fd to a free loop device, read-only and autoclear (the device
 * detaches when its last user, the mount, goes away). Returns an open fd on the device, its
 * path in dev; -errno. The caller closes the fd once the device is mounted. Root only. */
int loopdev_attach(int fd, unsigned flags, char *dev, size_t devsz);

/* Mounts the filesystem image open at fd (fstype "erofs" or "squashfs") read-only, nosuid,
 * nodev at the directory target, through a loop device that goes away with the mount.
 * 0 or -errno. */
int loopdev_mount(int fd, const char *fstype, const char *target, unsigned flags);

#endif
