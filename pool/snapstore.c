/* The snapshot store (see snapstore.h). Everything works on directory descriptors, opening
 * with O_NOFOLLOW: a sandbox's upper layer is written by untrusted code, so a name in it is
 * never resolved through a symlink, and a copy never leaves the snapshot's directory. */
#include "snapstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define OPAQUE_XATTR   "trusted.overlay.opaque"
#define MAX_DEPTH_DIRS 256 /* directory nesting a capture follows (bounds descriptors) */

bool snap_id_valid(const char *s)
{
	if (!s || strncmp(s, "snap-", 5) != 0 || strlen(s) != 21)
		return false;
	for (const char *c = s + 5; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

int snap_rmtree(int at, const char *name)
{
	struct stat st;
	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(at, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int rc = 0;
	for (struct dirent *e; (e = readdir(d));) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		int r = snap_rmtree(dirfd(d), e->d_name);
		if (r && !rc)
			rc = r;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

struct copy {
	const struct snap_owner *own;
	uint64_t bytes, files;
	char *err;
	size_t errsz;
};

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int fd)
{
	char v[4];
	ssize_t n = fgetxattr(fd, OPAQUE_XATTR, v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

static void owner_of(const struct copy *c, const struct stat *st, uid_t *uid, gid_t *gid)
{
	*uid = st->st_uid;
	*gid = st->st_gid;
	if (c->own && c->own->from != UINT32_MAX) {
		if (st->st_uid == c->own->from)
			*uid = c->own->uid;
		if (st->st_gid == c->own->from)
			*gid = c->own->gid;
	}
}

static int copy_data(int in, int out, off_t size)
{
	off_t left = size;
	while (left > 0) {
		ssize_t n = sendfile(out, in, NULL, left > (1 << 30) ? (1 << 30) : (size_t)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* the file shrank: the sandbox is frozen, so it cannot have */
		left -= n;
	}
	return 0;
}

/* Applies the layer in src onto dst: deletions remove what dst has at the name (and stay
 * as deletions, since a lower layer may hold the name), an opaque directory replaces dst's,
 * anything else replaces dst's entry. Onto an empty dst, this is a copy. */
static int apply(struct copy *c, int dst, int src, int depth)
{
	if (depth > MAX_DEPTH_DIRS)
		return -ELOOP;
	int sfd = dup(src);
	if (sfd < 0)
		return -errno;
	DIR *d = fdopendir(sfd);
	if (!d) {
		close(sfd);
		return -errno;
	}
	int rc = 0;
	for (struct dirent *e; !rc && (e = readdir(d));) {
		const char *name = e->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = errno == ENOENT ? 0 : -errno;
			continue;
		}
		uid_t uid;
		gid_t gid;
		owner_of(c, &st, &uid, &gid);
		struct stat dt;
		bool have = fstatat(dst, name, &dt, AT_SYMLINK_NOFOLLOW) == 0;
		c->files++;
		if (S_ISDIR(st.st_mode)) {
			int child = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (child < 0) {
				rc = -errno;
				break;
			}
			bool opaque = is_opaque(child);
			if (have && (!S_ISDIR(dt.st_mode) || opaque))
				rc = snap_rmtree(dst, name), have = false;
			if (!rc && !have && mkdirat(dst, name, 0700) < 0)
				rc = -errno;
			int dchild =
			    rc ? -1 : openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (!rc && dchild < 0)
				rc = -errno;
			if (!rc && opaque && fsetxattr(dchild, OPAQUE_XATTR, "y", 1, 0) < 0)
				rc = -errno;
			if (!rc)
				rc = apply(c, dchild, child, depth + 1);
			if (!rc && (fchown(dchild, uid, gid) < 0 || fchmod(dchild, st.st_mode & 07777) < 0))
				rc = -errno;
			struct timespec ts[2] = { st.st_atim, st.st_mtim };
			if (!rc)
				futimens(dchild, ts);
			if (dchild >= 0)
				close(dchild);
			close(child);
			continue;
		}
		if (have && (rc = snap_rmtree(dst, name)))
			break;
		if (is_whiteout(&st)) {
			if (mknodat(dst, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
				rc = -errno;
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);
			if (n < 0) {
				rc = -errno;
				break;
			}
			target[n] = 0;
			if (symlinkat(target, dst, name) < 0 ||
			    fchownat(dst, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
				rc = -errno;
		} else if (S_ISREG(st.st_mode)) {
			int in = openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			int out = in < 0 ? -1
					 : openat(dst, name,
						  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
			if (in < 0 || out < 0)
				rc = -errno;
			if (!rc)
				rc = copy_data(in, out, st.st_size);
			if (!rc && (fchown(out, uid, gid) < 0 || fchmod(out, st.st_mode & 07777) < 0))
				rc = -errno;
			struct timespec ts[2] = { st.st_atim, st.st_mtim };
			if (!rc)
				futimens(out, ts);
			if (in >= 0)
				close(in);
			if (out >= 0)
				close(out);
			c->bytes += (uint64_t)st.st_size;
		} else if (S_ISFIFO(st.st_mode)) {
			if (mknodat(dst, name, S_IFIFO | (st.st_mode & 0777), 0) < 0 ||
			    fchownat(dst, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
				rc = -errno;
		} else {
			c->files--; /* sockets and devices are not state a task can carry */
		}
		if (rc && c->err[0] == 0)
			snprintf(c->err, c->errsz, "cannot capture '%s': %s", name, strerror(-rc));
	}
	closedir(d);
	return rc;
}

static int write_meta(int dirfd, const struct snap_meta *m)
{
	char buf[1024];
	int n = snprintf(
	    buf, sizeof(buf),
	    "id %s\nparent %s\nimage %s\nprofile %s\ndepth %u\nbytes %llu\nfiles %llu\ncreated %llu\n", m->id,
	    m->parent[0] ? m->parent : "-", m->image, m->profile, m->depth, (unsigned long long)m->bytes,
	    (unsigned long long)m->files, (unsigned long long)m->created);
	int fd = openat(dirfd, "meta", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write(fd, buf, (size_t)n) == n ? 0 : -EIO;
	close(fd);
	return rc;
}

int snap_read_meta(const char *dir, const char *id, struct snap_meta *m)
{
	if (!snap_id_valid(id))
		return -EINVAL;
	char path[PATH_MAX], buf[1024];
	snprintf(path, sizeof(path), "%s/%s/meta", dir, id);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	memset(m, 0, sizeof(*m));
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(line, "id"))
			snprintf(m->id, sizeof(m->id), "%s", v);
		else if (!strcmp(line, "parent"))
			snprintf(m->parent, sizeof(m->parent), "%s", strcmp(v, "-") ? v : "");
		else if (!strcmp(line, "image"))
			snprintf(m->image, sizeof(m->image), "%s", v);
		else if (!strcmp(line, "profile"))
			snprintf(m->profile, sizeof(m->profile), "%s", v);
		else if (!strcmp(line, "depth"))
			m->depth = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(line, "bytes"))
			m->bytes = strtoull(v, NULL, 10);
		else if (!strcmp(line, "files"))
			m->files = strtoull(v, NULL, 10);
		else if (!strcmp(line, "created"))
			m->created = strtoull(v, NULL, 10);
	}
	if (strcmp(m->id, id) != 0 || (m->parent[0] && !snap_id_valid(m->parent)))
		return -EBADMSG;
	return 0;
}

int snap_chain(const char *dir, const char *id, char (*layers)[PATH_MAX], unsigned max, unsigned *n,
	       struct snap_meta *top)
{
	*n = 0;
	char cur[SNAP_ID_MAX];
	snprintf(cur, sizeof(cur), "%s", id ? id : "");
	while (cur[0]) {
		struct snap_meta m;
		int rc = snap_read_meta(dir, cur, &m);
		if (rc)
			return rc == -EBADMSG ? rc : rc == -EINVAL ? -EINVAL : -ENOENT;
		if (*n == max)
			return -E2BIG;
		if (*n == 0 && top)
			*top = m;
		snprintf(layers[*n], PATH_MAX, "%s/%s/root", dir, cur);
		char used[PATH_MAX];
		snprintf(used, sizeof(used), "%s/%s", dir, cur);
		utimensat(AT_FDCWD, used, NULL, 0); /* used now: the collector keeps it longest */
		(*n)++;
		snprintf(cur, sizeof(cur), "%s", m.parent);
	}
	return *n ? 0 : -EINVAL;
}

int snap_publish(const char *dir, const char *staging, const char *id, char *err, size_t errsz)
{
	int sfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".tmp-%s", id);
	int rc = 0, from = -1, to = -1, fr = -1, tr = -1;
	if (sfd < 0 || dfd < 0 ||
	    (from = openat(sfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    mkdirat(dfd, tmp, 0755) < 0 || (to = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    mkdirat(to, "root", 0755) < 0 ||
	    (tr = openat(to, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (fr = openat(from, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		rc = -errno;
	err[0] = 0;
	struct snap_owner none = { .from = UINT32_MAX };
	struct copy c = { .own = &none, .err = err, .errsz = errsz };
	if (!rc)
		rc = apply(&c, tr, fr, 0);
	struct stat st;
	if (!rc && fstat(fr, &st) == 0 &&
	    (fchown(tr, st.st_uid, st.st_gid) < 0 || fchmod(tr, st.st_mode & 07777) < 0))
		rc = -errno;
	if (!rc && is_opaque(fr))
		fsetxattr(tr, OPAQUE_XATTR, "y", 1, 0);
	if (!rc) {
		/* The meta last: a store never shows a layer without it. */
		int in = openat(from, "meta", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		int out = in < 0 ? -1 : openat(to, "meta", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (in < 0 || out < 0 || fstat(in, &st) < 0)
			rc = -errno;
		if (!rc)
			rc = copy_data(in, out, st.st_size);
		if (in >= 0)
			close(in);
		if (out >= 0)
			close(out);
	}
	if (!rc && renameat(dfd, tmp, dfd, id) < 0)
		rc = -errno;
	if (rc && dfd >= 0)
		snap_rmtree(dfd, tmp);
	if (rc && !err[0])
		snprintf(err, errsz, "publishing snapshot %s in %s: %s", id, dir, strerror(-rc));
	if (sfd >= 0)
		snap_rmtree(sfd, id);
	int fds[] = { sfd, dfd, from, to, fr, tr };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

int snap_capture(const char *dir, const char *staging, int upper_fd, const struct snap_owner *own,
		 const char *parent, const char *image, const char *profile, uint32_t max_depth,
		 struct snap_meta *out, char *err, size_t errsz)
{
	memset(out, 0, sizeof(*out));
	err[0] = 0;
	uint8_t rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	snprintf(out->id, sizeof(out->id), "snap-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(out->image, sizeof(out->image), "%s", image);
	snprintf(out->profile, sizeof(out->profile), "%s", profile);
	out->created = (uint64_t)time(NULL);
	out->depth = 1;
	char chain[64][PATH_MAX];
	unsigned nchain = 0;
	if (parent && parent[0]) {
		struct snap_meta pm;
		int rc = snap_read_meta(dir, parent, &pm);
		if (rc) {
			snprintf(err, errsz, "parent snapshot %s: %s", parent, strerror(-rc));
			return rc;
		}
		if (pm.depth + 1 > max_depth) {
			/* Too deep: this snapshot holds the whole chain and stands on the image. */
			if ((rc = snap_chain(dir, parent, chain, 64, &nchain, NULL))) {
				snprintf(err, errsz, "parent snapshot %s: %s", parent, strerror(-rc));
				return rc;
			}
		} else {
			snprintf(out->parent, sizeof(out->parent), "%s", parent);
			out->depth = pm.depth + 1;
		}
	}
	int dfd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		snprintf(err, errsz, "snapshot_dir %s: %s", staging, strerror(errno));
		return -errno;
	}
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".tmp-%s", out->id);
	int rc = 0, tfd = -1, rfd = -1;
	if (mkdirat(dfd, tmp, 0755) < 0 || (tfd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    mkdirat(tfd, "root", 0755) < 0 ||
	    (rfd = openat(tfd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errsz, "snapshot_dir %s: %s", dir, strerror(errno));
	}
	struct copy c = { .own = own, .err = err, .errsz = errsz };
	/* A flattened chain: its layers bottom up, then the sandbox's own on top. */
	for (unsigned i = nchain; !rc && i-- > 0;) {
		int lfd = open(chain[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct snap_owner none = { .from = UINT32_MAX };
		c.own = &none;
		rc = lfd < 0 ? -errno : apply(&c, rfd, lfd, 0);
		if (lfd >= 0)
			close(lfd);
	}
	c.own = own;
	if (!rc)
		rc = apply(&c, rfd, upper_fd, 0);
	/* The root directory itself: the upper's owner and mode. */
	struct stat st;
	if (!rc && fstat(upper_fd, &st) == 0) {
		uid_t uid;
		gid_t gid;
		owner_of(&c, &st, &uid, &gid);
		if (fchown(rfd, uid, gid) < 0 || fchmod(rfd, st.st_mode & 07777) < 0)
			rc = -errno;
		if (is_opaque(upper_fd))
			fsetxattr(rfd, OPAQUE_XATTR, "y", 1, 0);
	}
	out->bytes = c.bytes;
	out->files = c.files;
	if (!rc)
		rc = write_meta(tfd, out);
	if (!rc && renameat(dfd, tmp, dfd, out->id) < 0)
		rc = -errno;
	if (rfd >= 0)
		close(rfd);
	if (tfd >= 0)
		close(tfd);
	if (rc) {
		if (!err[0])
			snprintf(err, errsz, "snapshot: %s", strerror(-rc));
		snap_rmtree(dfd, tmp);
	}
	close(dfd);
	return rc;
}

struct entry {
	char id[SNAP_ID_MAX];
	char parent[SNAP_ID_MAX];
	uint64_t bytes;
	int64_t used;
	bool keep;
	bool gone;
};

static int by_use(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->used < y->used ? -1 : x->used > y->used;
}

/* Marks e's parents kept while e stays. */
static void keep_parents(struct entry *v, size_t n, const struct entry *e)
{
	for (const char *p = e->parent; p[0];) {
		const struct entry *next = NULL;
		for (size_t i = 0; i < n; i++)
			if (!v[i].gone && !strcmp(v[i].id, p)) {
				v[i].keep = true;
				next = &v[i];
				break;
			}
		if (!next)
			break;
		p = next->parent;
	}
}

static void evict(int dfd, struct entry *e, struct snap_stats *st)
{
	char del[64];
	snprintf(del, sizeof(del), ".del-%s", e->id);
	/* Out of sight first: an open racing the removal finds nothing, not half a layer. */
	if (renameat(dfd, e->id, dfd, del) == 0)
		snap_rmtree(dfd, del);
	e->gone = true;
	st->count--;
	st->bytes -= e->bytes;
	st->evicted++;
}

int snap_gc(const char *dir, uint64_t ttl_s, uint64_t budget_bytes, bool (*in_use)(void *arg, const char *id),
	    void *arg, struct snap_stats *st)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int lfd = dup(dfd);
	DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		close(dfd);
		return -ENOMEM;
	}
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	int64_t now = (int64_t)time(NULL);
	st->count = st->bytes = 0;
	for (struct dirent *e; (e = readdir(d));) {
		struct stat s;
		if (fstatat(dfd, e->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(s.st_mode))
			continue;
		if (!strncmp(e->d_name, ".tmp-", 5) || !strncmp(e->d_name, ".del-", 5)) {
			if (now - (int64_t)s.st_mtime > 3600 || !strncmp(e->d_name, ".del-", 5))
				snap_rmtree(dfd, e->d_name);
			continue;
		}
		struct snap_meta m;
		if (!snap_id_valid(e->d_name))
			continue;
		if (snap_read_meta(dir, e->d_name, &m)) {
			/* Damaged (no readable meta): nothing can open it; gone once an hour old. */
			if (now - (int64_t)s.st_mtime > 3600)
				snap_rmtree(dfd, e->d_name);
			continue;
		}
		if (n == cap) {
			struct entry *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		struct entry *x = &v[n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->id, sizeof(x->id), "%s", m.id);
		snprintf(x->parent, sizeof(x->parent), "%s", m.parent);
		x->bytes = m.bytes;
		x->used = (int64_t)s.st_mtime;
		x->keep = in_use && in_use(arg, x->id);
		st->count++;
		st->bytes += m.bytes;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), by_use);
	for (size_t i = 0; i < n; i++)
		if (v[i].keep)
			keep_parents(v, n, &v[i]);
	/* Oldest first, and again while something went: a parent can go once its last child
	 * did. */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			struct entry *e = &v[i];
			if (e->gone || e->keep)
				continue;
			bool parent = false;
			for (size_t k = 0; k < n && !parent; k++)
				parent = !v[k].gone && !strcmp(v[k].parent, e->id);
			if (parent)
				continue;
			if (now - e->used > (int64_t)ttl_s || st->bytes > budget_bytes) {
				evict(dfd, e, st);
				changed = true;
			}
		}
	}
	free(v);
	close(dfd);
	return 0;
}
