/* Loop devices set up in C, without losetup: LOOP_CTL_GET_FREE, then LOOP_CONFIGURE (one
 * atomic call, kernel 5.8) or, where that is missing, LOOP_SET_FD + LOOP_SET_STATUS64.
 * Another thread or process may take the free device between the two calls: it is then busy
 * and we ask for another. */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "loopdev.h"

#define LOOPDEV_TRIES 16

static int configure(int loopfd, int fd, unsigned flags)
{
	struct loop_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (__u32)fd;
	cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
	if (!(flags & LOOPDEV_LEGACY)) {
		if (ioctl(loopfd, LOOP_CONFIGURE, &cfg) == 0)
			return 0;
		/* ENOTTY/EINVAL: a kernel without LOOP_CONFIGURE; anything else is final. */
		if (errno != ENOTTY && errno != EINVAL)
			return -errno;
	}
	/* LOOP_SET_FD takes the read-only mode from how the backing file is open (O_RDONLY). */
	if (ioctl(loopfd, LOOP_SET_FD, fd) < 0)
		return -errno;
	if (ioctl(loopfd, LOOP_SET_STATUS64, &cfg.info) < 0) {
		int rc = -errno;
		ioctl(loopfd, LOOP_CLR_FD, 0);
		return rc;
	}
	return 0;
}

int loopdev_attach(int fd, unsigned flags, char *dev, size_t devsz)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	int rc = -EBUSY;
	for (int i = 0; i < LOOPDEV_TRIES; i++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			rc = -errno;
			break;
		}
		snprintf(dev, devsz, "/dev/loop%d", n);
		int loopfd = open(dev, O_RDONLY | O_CLOEXEC);
		if (loopfd < 0) {
			rc = -errno;
			break;
		}
		rc = configure(loopfd, fd, flags);
		if (rc == 0) {
			close(ctl);
			return loopfd;
		}
		close(loopfd);
		if (rc != -EBUSY)
			break;
	}
	close(ctl);
	return rc;
}

int loopdev_mount(int fd, const char *fstype, const char *target, unsigned flags)
{
	char dev[32];
	int loopfd = loopdev_attach(fd, flags, dev, sizeof(dev));
	if (loopfd < 0)
		return loopfd;
	int rc = 0;
	if (mount(dev, target, fstype, MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		rc = -errno;
	/* Autoclear: closing our fd leaves the mount as the only user; on a failed mount the
	 * device detaches here. */
	close(loopfd);
	return rc;
}
