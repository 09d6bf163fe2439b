/* Image sandboxes' roots (see docs/environments.md): the overlay of idmapped image and
 * snapshot layers below a tmpfs upper, mounted inside a new sandbox, and the user
 * namespaces whose maps make the image user's files the sandbox's. Part of the sandbox
 * runtime (sandbox.c); the zygote makes idmaps ahead while idle. */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "overlay.h"

/* Appends uid_map extents: `from` (an image uid) to `to` (the sandbox's), every other id
 * below 65536 to itself, except `to` (a host id two extents cannot both map to). */
static size_t idmap_text(char *buf, size_t cap, uint32_t from, uint32_t to)
{
	size_t n = (size_t)snprintf(buf, cap, "%u %u 1\n", from, to);
	uint32_t holes[2] = { from < to ? from : to, from < to ? to : from }, start = 0;
	for (int h = 0; h < 2 && start < 65536; h++) {
		if (holes[h] < start)
			continue;
		uint32_t stop = holes[h] < 65536 ? holes[h] : 65536;
		if (stop > start)
			n += (size_t)snprintf(buf + n, cap - n, "%u %u %u\n", start, start, stop - start);
		start = holes[h] + 1;
	}
	if (start < 65536)
		n += (size_t)snprintf(buf + n, cap - n, "%u %u %u\n", start, start, 65536 - start);
	return n;
}

static int idmap_child(void *arg)
{
	int *pipefd = arg;
	close(pipefd[1]); /* EOF once the parent closes its end */
	char c;
	ssize_t r = read(pipefd[0], &c, 1); /* until the parent has what it needs */
	(void)r;
	_exit(0);
}

int idmap_get(struct sbx_runtime *rt, uint32_t uid, uint32_t iuid, uint32_t igid)
{
	struct sbx_idmap *e = &rt->idmaps[(uid * 2654435761u ^ iuid ^ (igid << 7)) % SBX_IDMAP_CACHE];
	if (e->fd > 0 && e->uid == uid && e->iuid == iuid && e->igid == igid)
		return e->fd;
	if (iuid >= 65536 || igid >= 65536)
		return -EINVAL;
	int pp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		return -errno;
	static char stack[16384] __attribute__((aligned(16)));
	pid_t pid = clone(idmap_child, stack + sizeof(stack), CLONE_NEWUSER | CLONE_VM | SIGCHLD, pp);
	if (pid < 0) {
		int rc = -errno;
		close(pp[0]);
		close(pp[1]);
		return rc;
	}
	char path[64], map[256];
	int rc = 0;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	idmap_text(map, sizeof(map), iuid, uid);
	rc = sbx_write_str(path, map);
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	idmap_text(map, sizeof(map), igid, uid);
	if (!rc)
		rc = sbx_write_str(path, map);
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	int fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (!rc && fd < 0)
		rc = -errno;
	close(pp[1]);
	close(pp[0]);
	waitpid(pid, NULL, 0);
	if (rc)
		return rc;
	if (e->fd > 0)
		close(e->fd);
	*e = (struct sbx_idmap){ .uid = uid, .iuid = iuid, .igid = igid, .fd = fd };
	return fd;
}

bool sbx_idmap_fill(struct sbx_runtime *rt, const struct sbx_profile *p, unsigned ahead)
{
	if (!p->image || !p->img || rt->userns)
		return false;
	uint32_t count = p->uid_count ? p->uid_count : 1;
	for (unsigned k = 0; k < ahead; k++) {
		uint32_t uid = p->uid_base + (uint32_t)((rt->next_uid_slot + k) % count);
		struct sbx_idmap *e =
		    &rt->idmaps[(uid * 2654435761u ^ p->img->uid ^ (p->img->gid << 7)) % SBX_IDMAP_CACHE];
		if (e->fd > 0 && e->uid == uid && e->iuid == p->img->uid && e->igid == p->img->gid)
			continue;
		idmap_get(rt, uid, p->img->uid, p->img->gid);
		return true; /* one per call: the caller checks for requests between them */
	}
	return false;
}

/* An image sandbox's root: an overlay of the snapshot layers (if any) and the image's layers,
 * each an idmapped mount in which the image user's files belong to the sandbox's uid, below
 * a private upper layer on a tmpfs of disk_mb. Mounted at <staging>/r; the upper directory
 * stays reachable to the pool as init's SBX_UPPER_FD (snapshots read it from there). */
int sbx_image_root(const struct sbx_runtime *rt, const struct sbx_profile *p, const struct sbx_from *from,
		   int idmap, uint32_t uid, char *root, size_t cap)
{
	const struct sbx_image *img = p->img;
	char opts[64], upper[300], work[300];
	if (!img)
		return -EAGAIN;
	snprintf(opts, sizeof(opts), "size=%um,mode=0755", p->disk_mb);
	if (mount("tmpfs", rt->staging, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return -errno;
	snprintf(upper, sizeof(upper), "%s/u", rt->staging);
	snprintf(work, sizeof(work), "%s/w", rt->staging);
	snprintf(root, cap, "%s/r", rt->staging);
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 || mkdir(root, 0755) < 0)
		return -errno;
	/* fd 4, the lowest free one: init keeps it (close-on-exec) for the pool. */
	int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (ufd < 0)
		return -errno;
	if (ufd != SBX_UPPER_FD && (dup3(ufd, SBX_UPPER_FD, O_CLOEXEC) < 0 || close(ufd) < 0))
		return -errno;
	int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	unsigned n = (from ? from->nlayers : 0) + img->nlayers;
	int rc = 0, lfds[SBX_MAX_LAYERS];
	unsigned nfds = 0;
	struct stat top;
	if (n > SBX_MAX_LAYERS)
		rc = -E2BIG;
	for (unsigned i = 0; i < n && !rc; i++) {
		/* Top first: the snapshot layers, then the image's from its last layer down. */
		const char *dir = from && i < from->nlayers ? from->layers[i] : img->layers[n - 1 - i];
		int lfd = (int)syscall(SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY |
						       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
					   .userns_fd = (uint64_t)idmap };
		if (lfd < 0 || syscall(SYS_mount_setattr, lfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0 ||
		    (i == 0 && fstat(lfd, &top) < 0) ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lfd) < 0)
			rc = -errno;
		/* Open until the overlay exists: a detached mount ends with its last file. */
		if (lfd >= 0)
			lfds[nfds++] = lfd;
	}
	/* The root directory's owner and mode come from the upper layer's: the top layer's. */
	if (!rc && (chown(upper, top.st_uid, top.st_gid) < 0 || chmod(upper, top.st_mode & 07777) < 0))
		rc = -errno;
	if (!rc && (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0))
		rc = -errno;
	int mfd =
	    rc ? -1 : (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (!rc && (mfd < 0 || syscall(SYS_move_mount, mfd, "", AT_FDCWD, root, MOVE_MOUNT_F_EMPTY_PATH) < 0))
		rc = -errno;
	if (mfd >= 0)
		close(mfd);
	close(fs);
	while (nfds > 0)
		close(lfds[--nfds]);
	if (rc)
		return rc;
	/* Mount points the image may lack, made in the upper layer; /tmp is the sandbox's. */
	static const char *const points[] = { "dev", "proc", "sys", "run" };
	char d[512];
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		snprintf(d, sizeof(d), "%s/%s", root, points[i]);
		if (mkdir(d, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	snprintf(d, sizeof(d), "%s/tmp", root);
	if (mkdir(d, 01777) == 0 && (chown(d, uid, uid) < 0 || chmod(d, 01777) < 0))
		return -errno;
	/* The working directory, made (the sandbox's) when the image lacks it, as runtimes do. */
	if (img->cwd && img->cwd[0] == '/') {
		snprintf(d, sizeof(d), "%s%s", root, img->cwd);
		for (char *c = d + strlen(root) + 1; *c; c++) {
			if (*c != '/')
				continue;
			*c = 0;
			if (mkdir(d, 0755) == 0 && chown(d, uid, uid) < 0)
				return -errno;
			*c = '/';
		}
		if (mkdir(d, 0755) == 0 && chown(d, uid, uid) < 0)
			return -errno;
	}
	return 0;
}
