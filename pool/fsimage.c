/* erofs and squashfs images (fsimage.h): the file hashed, mounted read-only, nosuid, nodev
 * through a loop device at <state>/mnt/<first 16 hex of its sha256>, once however many
 * threads ask; the mount is its one layer. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsimage.h"
#include "image_int.h"
#include "layerstore.h"
#include "loopdev.h"

static bool is_mount_root(const char *path)
{
	struct statx stx;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Hashes the file (its sha256 names the mount point, so the same file mounts once) and
 * mounts it read-only, nosuid, nodev unless a mount of it is already there. */
int fsimage_resolve(struct res *r, const char *base, struct img *out)
{
	const char *fstype = img__ends_with(r->spec, ".erofs") ? "erofs" : "squashfs";
	int fd = open(r->spec, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img__fail(r, -errno, "%s", strerror(errno));
	struct stat st;
	int rc = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(1u << 20), hex[65];
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = img__fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = img__fail(r, -EINVAL, "not a regular file");
		goto out;
	}
	uint64_t done = 0, total = (uint64_t)st.st_size;
	img__progress(r, 0, 1, 0, total);
	for (;;) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = img__fail(r, -errno, "reading: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		done += (uint64_t)n;
		img__progress(r, 0, 1, done, total);
	}
	if ((rc = img__sha256_final(md, hex)) < 0) {
		rc = img__fail(r, rc, "sha256 failed");
		goto out;
	}
	snprintf(out->id, sizeof(out->id), "sha256:%s", hex);
	out->bytes = done;

	char mnt[PATH_MAX + 32], name[17];
	snprintf(name, sizeof(name), "%.16s", hex);
	snprintf(mnt, sizeof(mnt), "%s/mnt/%s", base, name);
	int state = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int mnts = state < 0 ? -errno : img__open_dir(state, "mnt", 0700);
	if (state >= 0)
		close(state);
	int point = mnts < 0 ? mnts : img__open_dir(mnts, name, 0755);
	if (point < 0) {
		if (mnts >= 0)
			close(mnts);
		rc = img__fail(r, point, "mount point %s: %s", mnt, strerror(-point));
		goto out;
	}
	close(point);
	struct busy b;
	if ((rc = layerstore_claim(mnts, name, &b)) == 0) {
		if (!is_mount_root(mnt) && (rc = loopdev_mount(fd, fstype, mnt, 0)) < 0)
			img__fail(r, rc, "mounting %s on %s: %s", fstype, mnt, strerror(-rc));
		layerstore_release(&b);
	} else {
		img__fail(r, rc, "%s: %s", mnt, strerror(-rc));
	}
	close(mnts);
	if (rc < 0)
		goto out;
	if (!(out->layers = calloc(1, sizeof(char *))) || !(out->layers[0] = strdup(mnt))) {
		rc = img__fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	out->nlayers = 1;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}
