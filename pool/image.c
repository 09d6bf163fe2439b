/* The image/layer store (image.h): OCI layouts unpacked into a content-addressed layer store,
 * filesystem images mounted through a loop device. Extraction is our own, on top of
 * libarchive's reader, with *at calls from the layer's root fd and O_NOFOLLOW on every
 * component: archive_write_disk resolves paths against the process's cwd, which a threaded
 * pool cannot change, and it cannot turn OCI whiteouts into overlayfs ones. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image.h"
#include "loopdev.h"

#define IMG_MAX_JSON    (8u << 20) /* oci-layout, index, manifest, config */
#define IMG_MAX_LAYERS  256        /* overlayfs takes up to 500 lower layers */
#define IMG_MAX_DEPTH   128        /* directories in an entry's path: bounds our fds when walking */
#define IMG_MAX_ETCFILE (4u << 20) /* /etc/passwd, /etc/group */
#define IMG_CHUNK       (64u << 10)
#define OPAQUE_XATTR    "trusted.overlay.opaque"
#define REF_NAME        "org.opencontainers.image.ref.name"

#if defined(__x86_64__)
#define IMG_ARCH "amd64"
#elif defined(__aarch64__)
#define IMG_ARCH "arm64"
#else
#define IMG_ARCH ""
#endif

#define MT_INDEX        "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST     "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG       "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_LIST  "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIF "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CFG   "application/vnd.docker.container.image.v1+json"

/* Layer media types we unpack; libarchive finds the compression itself. */
static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
};

/* One img_resolve call. */
struct res {
	const char *spec;
	const char *layer; /* digest of the layer being worked on, for messages; NULL */
	char *err;
	size_t errsz;
	img_progress_fn fn;
	void *arg;
	int layout; /* the OCI layout directory */
	int store;  /* <state>/layers */
	int sha;    /* <state>/layers/sha256 */
	uint64_t skipped;
};

/* A content descriptor from index.json or a manifest, checked. */
struct desc {
	const char *media; /* owned by the JSON it came from */
	char digest[72];   /* "sha256:<hex>" */
	char hex[65];
	uint64_t size;
};

/* Records the first failure as "image SPEC: [layer DIGEST: ]what" and returns rc. */
__attribute__((format(printf, 3, 4))) static int fail(struct res *r, int rc, const char *fmt, ...)
{
	if (r->errsz == 0 || r->err[0])
		return rc;
	int n = r->layer ? snprintf(r->err, r->errsz, "image %s: layer %s: ", r->spec, r->layer)
			 : snprintf(r->err, r->errsz, "image %s: ", r->spec);
	if (n >= 0 && (size_t)n < r->errsz) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->err + n, r->errsz - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static const char *errstr(int rc, char *buf, size_t len)
{
	return strerror_r(-rc, buf, len);
}

static void progress(struct res *r, uint64_t index, uint64_t n, uint64_t done, uint64_t total)
{
	if (r->fn)
		r->fn(r->arg, r->spec, r->layer, index, n, done, total);
}

/* --- Layers being unpacked (or mounts being made) by this process --------------------- */

/* Two threads that need the same layer: the second waits here until the first is done, then
 * finds it published. Keyed by the store directory, so separate stores do not wait on each
 * other. Across processes, rename(RENAME_NOREPLACE) keeps one copy. */
struct busy {
	dev_t dev;
	ino_t ino;
	char hex[65];
	struct busy *next;
};
static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_done = PTHREAD_COND_INITIALIZER;
static struct busy *busy_list;

static struct busy *busy_find(dev_t dev, ino_t ino, const char *hex)
{
	for (struct busy *b = busy_list; b; b = b->next)
		if (b->dev == dev && b->ino == ino && strcmp(b->hex, hex) == 0)
			return b;
	return NULL;
}

static int busy_claim(int at, const char *hex, struct busy *b)
{
	struct stat st;
	if (fstat(at, &st) < 0)
		return -errno;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	snprintf(b->hex, sizeof(b->hex), "%s", hex);
	pthread_mutex_lock(&busy_lock);
	while (busy_find(b->dev, b->ino, hex))
		pthread_cond_wait(&busy_done, &busy_lock);
	b->next = busy_list;
	busy_list = b;
	pthread_mutex_unlock(&busy_lock);
	return 0;
}

static void busy_release(struct busy *b)
{
	pthread_mutex_lock(&busy_lock);
	for (struct busy **p = &busy_list; *p; p = &(*p)->next)
		if (*p == b) {
			*p = b->next;
			break;
		}
	pthread_cond_broadcast(&busy_done);
	pthread_mutex_unlock(&busy_lock);
}

/* --- Small helpers -------------------------------------------------------------------- */

static bool is_hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == 0;
}

static void hex_of(const unsigned char *md, char out[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[md[i] >> 4];
		out[2 * i + 1] = digits[md[i] & 15];
	}
	out[64] = 0;
}

static int sha256_final(EVP_MD_CTX *md, char hex[65])
{
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (!EVP_DigestFinal_ex(md, sum, &len) || len != 32)
		return -EIO;
	hex_of(sum, hex);
	return 0;
}

/* Reads all of fd (at most max bytes, else -EFBIG) into a NUL-terminated buffer. */
static int read_all(int fd, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= max) {
				free(buf);
				return -EFBIG;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *grown = realloc(buf, cap + 1);
			if (!grown) {
				free(buf);
				return -ENOMEM;
			}
			buf = grown;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	*out = buf;
	*outlen = len;
	return 0;
}

/* Removes name (a file or a whole tree) under at without following a symlink. Trees are
 * ours (IMG_MAX_DEPTH bounds them), so recursion depth and fds stay bounded. */
static int rm_tree_at(int at, const char *name)
{
	if (unlinkat(at, name, 0) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int r = rm_tree_at(dirfd(d), de->d_name);
		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Bytes a tree takes on disk: blocks of each inode, a file with n links counting 1/n per
 * link (all its links are in the same layer, so the sum is exact). */
static uint64_t tree_bytes(int at)
{
	int fd = fcntl(at, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t sum = 0;
	struct stat st;
	if (fstat(at, &st) == 0)
		sum += (uint64_t)st.st_blocks * 512;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub =
			    openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				sum += tree_bytes(sub);
				close(sub);
			}
		} else {
			sum += (uint64_t)st.st_blocks * 512 / (st.st_nlink ? st.st_nlink : 1);
		}
	}
	closedir(d);
	return sum;
}

/* Opens (making it if missing) directory name under at. */
static int open_dir(int at, const char *name, mode_t mode)
{
	if (mkdirat(at, name, mode) < 0 && errno != EEXIST)
		return -errno;
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* --- Unpacking one layer -------------------------------------------------------------- */

/* Directory metadata, applied once the layer is written (writing into a directory changes
 * its mtime, and its mode may forbid writing). */
struct dirfix {
	char *path; /* relative to the layer root; "" is the root */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec mtime;
};

struct unpack {
	struct res *r;
	int root;   /* the tmp directory */
	bool owner; /* root: apply ownership from the tar */
	struct dirfix *fix;
	size_t nfix, capfix;
	const char *what; /* what failed, for the message */
	bool bad_read;    /* libarchive failed reading an entry's data */
};

/* Normalises an entry path into out ("a/b", "" for the root): empty and "." components go,
 * an absolute path or a ".." component is refused (-EPERM), as is one deeper than
 * IMG_MAX_DEPTH. */
static int clean_path(const char *in, char *out, size_t outsz)
{
	if (in[0] == '/')
		return -EPERM;
	size_t len = 0;
	int depth = 0;
	const char *p = in;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (n > NAME_MAX)
				return -ENAMETOOLONG;
			if (len + n + 2 > outsz || ++depth > IMG_MAX_DEPTH)
				return -ENAMETOOLONG;
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = *end ? end + 1 : end;
	}
	out[len] = 0;
	return 0;
}

/* Opens the directory holding the last component of path (cleaned, relative to root),
 * making missing directories when create is set and never following a symlink: a component
 * that is a symlink or no directory fails (-ELOOP, -ENOTDIR). *last points into path. */
static int open_parent(int root, const char *path, bool create, const char **last)
{
	int fd = fcntl(root, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	const char *p = path;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash) {
			*last = p;
			return fd;
		}
		char comp[NAME_MAX + 1];
		size_t n = (size_t)(slash - p);
		memcpy(comp, p, n);
		comp[n] = 0;
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) == 0 || errno == EEXIST)
				next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int err = errno;
		close(fd);
		if (next < 0)
			return -err;
		fd = next;
		p = slash + 1;
	}
}

/* Makes room for a new entry called name: a later entry replaces an earlier one. A directory
 * is kept when keep_dir (tar's "dir again" only updates metadata); returns 1 then. */
static int clear_name(int dfd, const char *name, bool keep_dir)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return keep_dir ? 1 : rm_tree_at(dfd, name);
	return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
}

static mode_t safe_mode(struct archive_entry *e)
{
	return archive_entry_perm(e) & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
}

static struct timespec entry_mtime(struct archive_entry *e)
{
	struct timespec ts = { 0, 0 };
	if (archive_entry_mtime_is_set(e)) {
		ts.tv_sec = archive_entry_mtime(e);
		ts.tv_nsec = archive_entry_mtime_nsec(e);
	}
	return ts;
}

static int add_fix(struct unpack *u, const char *path, struct archive_entry *e)
{
	if (u->nfix == u->capfix) {
		size_t cap = u->capfix ? u->capfix * 2 : 64;
		struct dirfix *grown = realloc(u->fix, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		u->fix = grown;
		u->capfix = cap;
	}
	struct dirfix *f = &u->fix[u->nfix];
	if (!(f->path = strdup(path)))
		return -ENOMEM;
	f->mode = safe_mode(e);
	f->uid = (uid_t)archive_entry_uid(e);
	f->gid = (gid_t)archive_entry_gid(e);
	f->mtime = entry_mtime(e);
	u->nfix++;
	return 0;
}

/* Applies ownership, mode and times to the open object fd (not a symlink). */
static int set_meta(struct unpack *u, int fd, mode_t mode, uid_t uid, gid_t gid, struct timespec mtime)
{
	/* chown before chmod: chown clears the mode's set-id bits (there are none left anyway). */
	if (u->owner && fchown(fd, uid, gid) < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		return -errno;
	struct timespec ts[2] = { mtime, mtime };
	return futimens(fd, ts) < 0 ? -errno : 0;
}

static int apply_fixes(struct unpack *u)
{
	/* The root when the tar has no "./": what an image root usually is. */
	if (fchmod(u->root, 0755) < 0) {
		u->what = "setting the layer root's mode";
		return -errno;
	}
	for (size_t i = 0; i < u->nfix; i++) {
		struct dirfix *f = &u->fix[i];
		int fd;
		if (f->path[0] == 0) {
			fd = fcntl(u->root, F_DUPFD_CLOEXEC, 0);
		} else {
			const char *name;
			int dfd = open_parent(u->root, f->path, false, &name);
			if (dfd < 0)
				continue; /* replaced by a later entry: nothing to fix */
			fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			close(dfd);
		}
		if (fd < 0)
			continue;
		int rc = set_meta(u, fd, f->mode, f->uid, f->gid, f->mtime);
		close(fd);
		if (rc < 0) {
			u->what = "setting a directory's owner, mode or times";
			return rc;
		}
	}
	return 0;
}

/* ".wh..wh..opq": the directory hides what lower layers have in it. ".wh.NAME": NAME is
 * deleted, which overlayfs spells as a 0/0 character device. */
static int whiteout(struct unpack *u, int dfd, const char *name)
{
	if (strcmp(name, ".wh..wh..opq") == 0) {
		u->what = "setting " OPAQUE_XATTR;
		return fsetxattr(dfd, OPAQUE_XATTR, "y", 1, 0) < 0 ? -errno : 0;
	}
	const char *target = name + 4;
	u->what = "whiteout";
	if (!*target || strcmp(target, ".") == 0 || strcmp(target, "..") == 0)
		return -EPERM;
	int rc = clear_name(dfd, target, false);
	if (rc < 0)
		return rc;
	u->what = "making a whiteout (0/0 character device)";
	return mknodat(dfd, target, S_IFCHR | 0, makedev(0, 0)) < 0 ? -errno : 0;
}

/* A hardlink to an earlier entry of this layer; its target is cleaned and walked like any
 * path, so it cannot leave the layer. */
static int hardlink(struct unpack *u, int dfd, const char *name, const char *path, const char *target)
{
	char tpath[PATH_MAX];
	u->what = "hardlink target outside the layer";
	int rc = clean_path(target, tpath, sizeof(tpath));
	if (rc < 0)
		return rc;
	u->what = "hardlink to itself or the layer root";
	if (tpath[0] == 0 || strcmp(tpath, path) == 0)
		return -EPERM;
	const char *tname;
	u->what = "hardlink target through a symlink or missing";
	int tfd = open_parent(u->root, tpath, false, &tname);
	if (tfd < 0)
		return tfd == -ELOOP || tfd == -ENOTDIR ? -EPERM : tfd;
	rc = clear_name(dfd, name, false);
	u->what = "hardlink";
	/* No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself. */
	if (rc == 0 && linkat(tfd, tname, dfd, name, 0) < 0)
		rc = -errno;
	close(tfd);
	return rc;
}

static int write_file(struct unpack *u, struct archive *a, struct archive_entry *e, int dfd, const char *name)
{
	u->what = "replacing an earlier entry";
	int rc = clear_name(dfd, name, false);
	if (rc < 0)
		return rc;
	u->what = "creating a file";
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(a, &buf, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			u->what = archive_error_string(a);
			u->bad_read = true;
			rc = -EIO;
			goto out;
		}
		for (size_t done = 0; done < len;) {
			ssize_t n = pwrite(fd, (const char *)buf + done, len - done, off + (off_t)done);
			if (n < 0) {
				u->what = "writing a file";
				rc = -errno;
				goto out;
			}
			done += (size_t)n;
		}
	}
	u->what = "writing a file";
	if (ftruncate(fd, archive_entry_size(e)) < 0) {
		rc = -errno;
		goto out;
	}
	u->what = "setting a file's owner, mode or times";
	rc = set_meta(u, fd, safe_mode(e), (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
		      entry_mtime(e));
out:
	close(fd);
	return rc;
}

static int make_symlink(struct unpack *u, struct archive_entry *e, int dfd, const char *name)
{
	const char *target = archive_entry_symlink(e);
	u->what = "symlink without a target";
	if (!target)
		return -EINVAL;
	u->what = "replacing an earlier entry";
	int rc = clear_name(dfd, name, false);
	if (rc < 0)
		return rc;
	/* Its target may point anywhere: we never follow it. */
	u->what = "creating a symlink";
	if (symlinkat(target, dfd, name) < 0)
		return -errno;
	if (u->owner && fchownat(dfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
				 AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	struct timespec ts[2] = { entry_mtime(e), entry_mtime(e) };
	return utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e)
{
	char ebuf[64], path[PATH_MAX];
	const char *raw = archive_entry_pathname(e);
	if (!raw)
		return fail(u->r, -EINVAL, "an entry with an unreadable name");
	int rc = clean_path(raw, path, sizeof(path));
	if (rc < 0)
		return fail(u->r, rc, "entry %s: absolute path, '..' or too long: refused", raw);
	unsigned type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e);
	if (path[0] == 0) {
		if (type != AE_IFDIR || link)
			return fail(u->r, -EPERM, "entry %s: the layer root as no directory: refused", raw);
		return add_fix(u, "", e) < 0 ? fail(u->r, -ENOMEM, "out of memory") : 0;
	}
	const char *name;
	int dfd = open_parent(u->root, path, true, &name);
	if (dfd < 0)
		return fail(u->r, dfd == -ENOTDIR || dfd == -ELOOP ? -EPERM : dfd,
			    "entry %s: path through a symlink or a non-directory: refused (%s)", raw,
			    errstr(dfd, ebuf, sizeof(ebuf)));
	u->what = NULL;
	if (strncmp(name, ".wh.", 4) == 0) {
		rc = whiteout(u, dfd, name);
	} else if (link) {
		rc = hardlink(u, dfd, name, path, link);
	} else if (type == AE_IFREG) {
		rc = write_file(u, a, e, dfd, name);
	} else if (type == AE_IFDIR) {
		u->what = "making a directory";
		rc = clear_name(dfd, name, true);
		if (rc == 0 && mkdirat(dfd, name, 0700) < 0)
			rc = -errno;
		if (rc >= 0)
			rc = add_fix(u, path, e);
	} else if (type == AE_IFLNK) {
		rc = make_symlink(u, e, dfd, name);
	} else {
		/* Device nodes, fifos, sockets: a sandbox has no use for them. */
		u->r->skipped++;
		rc = 0;
	}
	close(dfd);
	if (rc < 0)
		return fail(u->r, rc, "entry %s: %s: %s", raw, u->what ? u->what : "unpacking",
			    errstr(rc, ebuf, sizeof(ebuf)));
	return 0;
}

/* The blob as libarchive reads it: hashed and counted on the way. */
struct blobread {
	struct res *r;
	int fd;
	EVP_MD_CTX *md;
	uint64_t done, size, index, n;
	int err; /* errno of a failed read */
	char buf[IMG_CHUNK];
};

static la_ssize_t blob_read(struct archive *a, void *p, const void **out)
{
	struct blobread *b = p;
	ssize_t n;
	do
		n = read(b->fd, b->buf, sizeof(b->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		b->err = errno;
		if (a)
			archive_set_error(a, errno, "reading the blob");
		return -1;
	}
	EVP_DigestUpdate(b->md, b->buf, (size_t)n);
	b->done += (uint64_t)n;
	if (n > 0)
		progress(b->r, b->index, b->n, b->done, b->size);
	*out = b->buf;
	return n;
}

/* Reads what libarchive left of the blob (tar padding, compressor trailers) and checks the
 * digest and size of the whole. */
static int blob_check(struct blobread *b, const struct desc *d)
{
	const void *chunk;
	la_ssize_t n;
	while ((n = blob_read(NULL, b, &chunk)) > 0)
		;
	if (n < 0)
		return fail(b->r, -b->err, "reading the blob: %s", strerror(b->err));
	char hex[65];
	if (sha256_final(b->md, hex) < 0)
		return fail(b->r, -EIO, "sha256 failed");
	if (b->done != d->size)
		return fail(b->r, -EBADMSG, "blob is %llu bytes, the manifest says %llu: refused",
			    (unsigned long long)b->done, (unsigned long long)d->size);
	if (strcmp(hex, d->hex) != 0)
		return fail(b->r, -EBADMSG, "digest mismatch (blob is sha256:%s): refused", hex);
	return 0;
}

/* Unpacks the blob open at fd into the directory root. Refuses the first hostile entry. */
static int extract(struct res *r, const struct desc *d, int fd, int root, uint64_t index, uint64_t n)
{
	struct unpack u = { .r = r, .root = root, .owner = geteuid() == 0 };
	char why[256];
	struct blobread *b = calloc(1, sizeof(*b));
	struct archive *a = archive_read_new();
	int rc = -ENOMEM;
	if (!b || !a || !(b->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(b->md, EVP_sha256(), NULL)) {
		fail(r, rc, "out of memory");
		goto out;
	}
	*b = (struct blobread){ .r = r, .fd = fd, .md = b->md, .size = d->size, .index = index, .n = n };
	progress(r, index, n, 0, d->size);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	if (archive_read_open(a, b, NULL, blob_read, NULL) != ARCHIVE_OK) {
		rc = -EIO;
		goto bad_archive;
	}
	for (;;) {
		struct archive_entry *e;
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN) {
			rc = -EIO;
			goto bad_archive;
		}
		if ((rc = unpack_entry(&u, a, e)) < 0) {
			/* A read error inside an entry's data: a damaged blob, say so below. */
			if (u.bad_read)
				goto bad_archive;
			goto out;
		}
	}
	if ((rc = blob_check(b, d)) < 0)
		goto out;
	if ((rc = apply_fixes(&u)) < 0) {
		char ebuf[64];
		fail(r, rc, "%s: %s", u.what, errstr(rc, ebuf, sizeof(ebuf)));
	}
	goto out;
bad_archive:
	/* A damaged blob is first a digest or size mismatch; only a blob that checks out is a
	 * bad archive (truncated, not a tar). */
	snprintf(why, sizeof(why), "%s", archive_error_string(a) ? archive_error_string(a) : "?");
	if (r->errsz)
		r->err[0] = 0;
	if ((rc = blob_check(b, d)) == 0)
		rc = fail(r, -EIO, "not a readable tar layer: %s: refused", why);
out:
	for (size_t i = 0; i < u.nfix; i++)
		free(u.fix[i].path);
	free(u.fix);
	if (a)
		archive_read_free(a);
	if (b)
		EVP_MD_CTX_free(b->md);
	free(b);
	return rc;
}

/* Unpacks layer d into tmp.<hex>.<pid>.<tid> and publishes it as sha256/<hex>. Called with
 * the layer claimed (busy_claim). */
static int unpack_layer(struct res *r, const struct desc *d, uint64_t index, uint64_t n)
{
	char tmp[128], blob[96], ebuf[64];
	snprintf(tmp, sizeof(tmp), "tmp.%s.%d.%d", d->hex, (int)getpid(), (int)gettid());
	snprintf(blob, sizeof(blob), "blobs/sha256/%s", d->hex);
	int fd = openat(r->layout, blob, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "blob %s: %s", blob, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		rc = fail(r, -EINVAL, "blob %s: not a regular file", blob);
	else if ((uint64_t)st.st_size != d->size)
		rc = fail(r, -EBADMSG, "blob is %llu bytes, the manifest says %llu: refused",
			  (unsigned long long)st.st_size, (unsigned long long)d->size);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	rm_tree_at(r->store, tmp); /* ours by name: a thread of a dead process with our ids */
	int root = open_dir(r->store, tmp, 0700);
	if (root < 0) {
		close(fd);
		return fail(r, root, "making %s: %s", tmp, errstr(root, ebuf, sizeof(ebuf)));
	}
	rc = extract(r, d, fd, root, index, n);
	close(fd);
	if (rc == 0 && syncfs(root) < 0)
		rc = fail(r, -errno, "syncfs: %s", strerror(errno));
	close(root);
	if (rc == 0 && renameat2(r->store, tmp, r->sha, d->hex, RENAME_NOREPLACE) < 0) {
		/* EEXIST: another process published it first; its copy serves. */
		if (errno != EEXIST)
			rc = fail(r, -errno, "publishing %s: %s", tmp, strerror(errno));
		rm_tree_at(r->store, tmp);
	}
	if (rc < 0)
		rm_tree_at(r->store, tmp);
	return rc;
}

/* Makes layer d present in the store: found published (its blob is not read again), or
 * unpacked once however many threads ask at the same time. */
static int get_layer(struct res *r, const struct desc *d, uint64_t index, uint64_t n)
{
	struct busy b;
	int rc = busy_claim(r->sha, d->hex, &b);
	if (rc < 0)
		return fail(r, rc, "the layer store: %s", strerror(-rc));
	struct stat st;
	if (fstatat(r->sha, d->hex, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		progress(r, index, n, d->size, d->size);
	else
		rc = unpack_layer(r, d, index, n);
	busy_release(&b);
	return rc;
}

/* Removes what a crashed resolve left: tmp.<hex>.<pid>.<tid> of a process that is gone, or
 * of ours but of no layer being unpacked now. */
static void sweep_tmp(struct res *r)
{
	int fd = fcntl(r->store, F_DUPFD_CLOEXEC, 0);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct stat st;
	if (fstat(r->sha, &st) < 0) {
		closedir(d);
		return;
	}
	pthread_mutex_lock(&busy_lock);
	struct dirent *de;
	while ((de = readdir(d))) {
		char hex[65];
		int pid, tid;
		if (sscanf(de->d_name, "tmp.%64[0-9a-f].%d.%d", hex, &pid, &tid) != 3)
			continue;
		bool live = pid == getpid() ? busy_find(st.st_dev, st.st_ino, hex) != NULL
					    : (kill(pid, 0) == 0 || errno == EPERM);
		if (!live)
			rm_tree_at(dirfd(d), de->d_name);
	}
	pthread_mutex_unlock(&busy_lock);
	closedir(d);
}

/* --- OCI layout ----------------------------------------------------------------------- */

static int get_desc(struct res *r, json_t *j, struct desc *d, const char *what)
{
	json_t *digest = json_object_get(j, "digest"), *size = json_object_get(j, "size");
	const char *s = json_string_value(digest);
	d->media = json_string_value(json_object_get(j, "mediaType"));
	if (!s || !json_is_integer(size) || json_integer_value(size) < 0)
		return fail(r, -EINVAL, "%s descriptor without a digest or size", what);
	if (strncmp(s, "sha256:", 7) != 0 || !is_hex64(s + 7))
		return fail(r, -ENOTSUP, "%s %s: only sha256 digests are supported", what, s);
	snprintf(d->digest, sizeof(d->digest), "%s", s);
	snprintf(d->hex, sizeof(d->hex), "%s", s + 7);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

/* Reads a small blob, checks its size and digest, and parses it as JSON. */
static int load_blob(struct res *r, const struct desc *d, const char *what, json_t **out)
{
	char path[96], hex[65];
	snprintf(path, sizeof(path), "blobs/sha256/%s", d->hex);
	if (d->size > IMG_MAX_JSON)
		return fail(r, -EFBIG, "%s %s: %llu bytes, more than we read", what, d->digest,
			    (unsigned long long)d->size);
	int fd = openat(r->layout, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "%s %s: %s", what, d->digest, strerror(errno));
	char *buf;
	size_t len;
	int rc = read_all(fd, IMG_MAX_JSON, &buf, &len);
	close(fd);
	if (rc < 0)
		return fail(r, rc, "%s %s: %s", what, d->digest, strerror(-rc));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	rc = -EIO;
	if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, buf, len))
		rc = sha256_final(md, hex);
	EVP_MD_CTX_free(md);
	if (rc < 0)
		rc = fail(r, rc, "sha256 failed");
	else if (len != d->size)
		rc = fail(r, -EBADMSG, "%s %s: blob is %zu bytes, the descriptor says %llu: refused", what,
			  d->digest, len, (unsigned long long)d->size);
	else if (strcmp(hex, d->hex) != 0)
		rc = fail(r, -EBADMSG, "%s %s: digest mismatch (blob is sha256:%s): refused", what, d->digest,
			  hex);
	if (rc == 0) {
		json_error_t je;
		*out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
		if (!*out || !json_is_object(*out)) {
			json_decref(*out);
			rc = fail(r, -EINVAL, "%s %s: bad JSON: %s", what, d->digest, je.text);
		}
	}
	free(buf);
	return rc;
}

static int load_file(struct res *r, const char *name, json_t **out)
{
	int fd = openat(r->layout, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "%s: %s", name, strerror(errno));
	char *buf;
	size_t len;
	int rc = read_all(fd, IMG_MAX_JSON, &buf, &len);
	close(fd);
	if (rc < 0)
		return fail(r, rc, "%s: %s", name, strerror(-rc));
	json_error_t je;
	*out = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!*out || !json_is_object(*out)) {
		json_decref(*out);
		return fail(r, -EINVAL, "%s: bad JSON: %s", name, je.text);
	}
	return 0;
}

static bool is_index(const char *media)
{
	return media && (strcmp(media, MT_INDEX) == 0 || strcmp(media, MT_DOCKER_LIST) == 0);
}

static bool is_manifest(const char *media)
{
	return media && (strcmp(media, MT_MANIFEST) == 0 || strcmp(media, MT_DOCKER_MANIF) == 0);
}

/* The entry of an index's manifests tagged tag, or NULL. */
static json_t *find_tag(json_t *index, const char *tag)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(index, "manifests"), i, m)
	{
		const char *ref =
		    json_string_value(json_object_get(json_object_get(m, "annotations"), REF_NAME));
		if (ref && strcmp(ref, tag) == 0)
			return m;
	}
	return NULL;
}

/* In a nested index the tag has chosen: the manifest for linux on our architecture, or its
 * only manifest. */
static json_t *pick_platform(json_t *index)
{
	json_t *all = json_object_get(index, "manifests"), *m;
	size_t i;
	json_array_foreach(all, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *arch = json_string_value(json_object_get(p, "architecture"));
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, IMG_ARCH) == 0)
			return m;
	}
	return json_array_size(all) == 1 ? json_array_get(all, 0) : NULL;
}

/* Finds the manifest descriptor for tag: in index.json, or one level down in a nested index
 * (tagged itself, or holding the tagged manifest). *hold keeps the nested index alive. */
static int find_manifest(struct res *r, json_t *top, const char *tag, struct desc *d, json_t **hold)
{
	json_t *m = find_tag(top, tag);
	*hold = NULL;
	if (!m) {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(top, "manifests"), i, e)
		{
			struct desc nd;
			if (!is_index(json_string_value(json_object_get(e, "mediaType"))))
				continue;
			int rc = get_desc(r, e, &nd, "nested index");
			if (rc == 0)
				rc = load_blob(r, &nd, "nested index", hold);
			if (rc < 0)
				return rc;
			if ((m = find_tag(*hold, tag)))
				break;
			json_decref(*hold);
			*hold = NULL;
		}
	}
	if (!m)
		return fail(r, -ENOENT, "no manifest tagged %s in index.json", tag);
	int rc = get_desc(r, m, d, "manifest");
	if (rc < 0 || !is_index(d->media))
		return rc;
	if (*hold)
		return fail(r, -ENOTSUP, "tag %s: an index nested more than one level", tag);
	if ((rc = load_blob(r, d, "nested index", hold)) < 0)
		return rc;
	if (!(m = pick_platform(*hold)))
		return fail(r, -ENOENT, "tag %s: no manifest for linux/%s in index %s", tag, IMG_ARCH,
			    d->digest);
	return get_desc(r, m, d, "manifest");
}

static bool known_layer(const char *media)
{
	for (size_t i = 0; media && i < sizeof(layer_types) / sizeof(layer_types[0]); i++)
		if (strcmp(media, layer_types[i]) == 0)
			return true;
	return false;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* Env, WorkingDir and User of the image config. */
static int take_config(struct res *r, json_t *cfg, struct img *out)
{
	json_t *c = json_object_get(cfg, "config"), *env = json_object_get(c, "Env"), *v;
	size_t i;
	if (json_array_size(env)) {
		out->env = calloc(json_array_size(env), sizeof(char *));
		if (!out->env)
			return fail(r, -ENOMEM, "out of memory");
	}
	json_array_foreach(env, i, v)
	{
		const char *s = json_string_value(v);
		if (!s || !strchr(s, '='))
			return fail(r, -EINVAL, "config: Env entry %zu is not NAME=value", i);
		if (!(out->env[out->nenv++] = strdup(s)))
			return fail(r, -ENOMEM, "out of memory");
	}
	out->workdir = dup_or_null(json_string_value(json_object_get(c, "WorkingDir")));
	out->user = dup_or_null(json_string_value(json_object_get(c, "User")));
	return 0;
}

/* --- User -> uid/gid from the image's own /etc ---------------------------------------- */

/* Reads etc/NAME as the merged image shows it: layers searched top down, a whiteout hides it,
 * an opaque etc hides the layers below. *out NULL when absent. */
static int read_etc(const struct img *img, const char *name, char **out)
{
	*out = NULL;
	for (unsigned i = img->nlayers; i-- > 0;) {
		int layer = open(img->layers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (layer < 0)
			return -errno;
		struct stat st;
		int rc = 0;
		bool stop = false;
		if (fstatat(layer, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0) {
			close(layer);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(layer);
			return 0; /* whited out, or a file or symlink hiding what is below */
		}
		int etc = openat(layer, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(layer);
		if (etc < 0)
			return -errno;
		char y;
		stop = fgetxattr(etc, OPAQUE_XATTR, &y, 1) == 1 && y == 'y';
		if (fstatat(etc, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			/* Read if a file; as anything else (a whiteout, a symlink) it hides the
			 * lower ones all the same. */
			stop = true;
			if (S_ISREG(st.st_mode)) {
				int fd = openat(etc, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
				size_t len;
				rc = fd < 0 ? -errno : read_all(fd, IMG_MAX_ETCFILE, out, &len);
				if (fd >= 0)
					close(fd);
			}
		}
		close(etc);
		if (rc < 0 || stop)
			return rc;
	}
	return 0;
}

static bool parse_u32(const char *s, uint32_t *v)
{
	if (!*s)
		return false;
	uint64_t x = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			return false;
	}
	*v = (uint32_t)x;
	return true;
}

/* Finds in a passwd or group file the line whose field key_field (0: name, 2: id) equals key;
 * returns fields 2 and 3 (passwd: uid, gid; group: gid). */
static bool etc_lookup(const char *file, int key_field, const char *key, uint32_t *id, uint32_t *id2)
{
	for (const char *line = file; line && *line;) {
		const char *nl = strchrnul(line, '\n');
		char copy[1024], *f[4] = { 0 }, *p = copy;
		snprintf(copy, sizeof(copy), "%.*s", (int)(nl - line), line);
		line = *nl ? nl + 1 : nl;
		for (int i = 0; i < 4 && p; i++) {
			f[i] = p;
			if ((p = strchr(p, ':')))
				*p++ = 0;
		}
		uint32_t a = 0, b = 0;
		if (!f[2] || !parse_u32(f[2], &a) || strcmp(f[key_field], key) != 0)
			continue;
		if (f[3])
			parse_u32(f[3], &b);
		*id = a;
		if (id2)
			*id2 = b;
		return true;
	}
	return false;
}

/* User as docker reads it: "uid", "name", either with ":gid" or ":group". A numeric uid not in
 * passwd runs with gid 0. */
static int resolve_user(struct res *r, struct img *img)
{
	if (!img->user)
		return 0;
	char user[256], *group = NULL, *passwd = NULL, *groups = NULL;
	snprintf(user, sizeof(user), "%s", img->user);
	if ((group = strchr(user, ':')))
		*group++ = 0;
	int rc = read_etc(img, "passwd", &passwd);
	if (rc < 0)
		return fail(r, rc, "reading /etc/passwd: %s", strerror(-rc));
	uint32_t uid = 0, gid = 0, pgid = 0;
	if (parse_u32(user, &uid)) {
		if (etc_lookup(passwd, 2, user, &uid, &pgid))
			gid = pgid;
	} else if (etc_lookup(passwd, 0, user, &uid, &pgid)) {
		gid = pgid;
	} else {
		rc = fail(r, -ENOENT, "user %s is not in the image's /etc/passwd", user);
	}
	if (rc == 0 && group && !parse_u32(group, &gid)) {
		rc = read_etc(img, "group", &groups);
		if (rc < 0)
			rc = fail(r, rc, "reading /etc/group: %s", strerror(-rc));
		else if (!etc_lookup(groups, 0, group, &gid, NULL))
			rc = fail(r, -ENOENT, "group %s is not in the image's /etc/group", group);
	}
	free(passwd);
	free(groups);
	img->uid = uid;
	img->gid = gid;
	return rc;
}

int img_set_user(struct img *img, const char *user, char *err, size_t errsz)
{
	struct res r = { .spec = img->spec, .err = err, .errsz = errsz };
	err[0] = 0;
	char *copy = strdup(user);
	if (!copy)
		return -ENOMEM;
	free(img->user);
	img->user = copy;
	return resolve_user(&r, img);
}

/* --- Putting an OCI image together ---------------------------------------------------- */

static int open_store(struct res *r, const char *base)
{
	int state = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state < 0)
		return fail(r, -errno, "state directory %s: %s", base, strerror(errno));
	r->store = open_dir(state, "layers", 0700);
	close(state);
	if (r->store < 0)
		return fail(r, r->store, "%s/layers: %s", base, strerror(-r->store));
	r->sha = open_dir(r->store, "sha256", 0700);
	if (r->sha < 0)
		return fail(r, r->sha, "%s/layers/sha256: %s", base, strerror(-r->sha));
	return 0;
}

static int resolve_oci(struct res *r, const char *base, const char *ref, struct img *out)
{
	char path[PATH_MAX], tag[256] = "latest";
	snprintf(path, sizeof(path), "%s", ref);
	char *colon = strrchr(path, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = 0;
		if (colon[1])
			snprintf(tag, sizeof(tag), "%s", colon + 1);
	}
	json_t *layout = NULL, *index = NULL, *nested = NULL, *manifest = NULL, *config = NULL;
	struct desc *layers = NULL;
	int rc;
	r->layout = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->layout < 0)
		return fail(r, -errno, "layout %s: %s", path, strerror(errno));
	if ((rc = load_file(r, "oci-layout", &layout)) < 0)
		goto out;
	const char *v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
	if (!v || strncmp(v, "1.", 2) != 0) {
		rc = fail(r, -ENOTSUP, "oci-layout: imageLayoutVersion %s is not 1.x", v ? v : "(none)");
		goto out;
	}
	struct desc md, cd;
	if ((rc = load_file(r, "index.json", &index)) < 0 ||
	    (rc = find_manifest(r, index, tag, &md, &nested)) < 0)
		goto out;
	if (md.media && !is_manifest(md.media)) {
		rc =
		    fail(r, -ENOTSUP, "manifest %s: media type %s is no image manifest", md.digest, md.media);
		goto out;
	}
	if ((rc = load_blob(r, &md, "manifest", &manifest)) < 0)
		goto out;
	const char *mt = json_string_value(json_object_get(manifest, "mediaType"));
	if (mt && !is_manifest(mt)) {
		rc = fail(r, -ENOTSUP, "manifest %s: media type %s is no image manifest", md.digest, mt);
		goto out;
	}
	if ((rc = get_desc(r, json_object_get(manifest, "config"), &cd, "config")) < 0)
		goto out;
	if (!cd.media || (strcmp(cd.media, MT_CONFIG) != 0 && strcmp(cd.media, MT_DOCKER_CFG) != 0)) {
		rc = fail(r, -ENOTSUP, "config %s: media type %s is no image config", cd.digest,
			  cd.media ? cd.media : "(none)");
		goto out;
	}
	if ((rc = load_blob(r, &cd, "config", &config)) < 0)
		goto out;

	json_t *ls = json_object_get(manifest, "layers"), *l;
	size_t n = json_array_size(ls), i;
	if (!json_is_array(ls) || n > IMG_MAX_LAYERS) {
		rc = fail(r, -EINVAL, "manifest %s: no layers array, or more than %d layers", md.digest,
			  IMG_MAX_LAYERS);
		goto out;
	}
	layers = calloc(n ? n : 1, sizeof(*layers));
	out->layers = calloc(n ? n : 1, sizeof(char *));
	if (!layers || !out->layers) {
		rc = fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	/* Every descriptor checked before a byte is unpacked. */
	json_array_foreach(ls, i, l)
	{
		if ((rc = get_desc(r, l, &layers[i], "layer")) < 0)
			goto out;
		if (!known_layer(layers[i].media)) {
			r->layer = layers[i].digest;
			rc = fail(r, -ENOTSUP, "media type %s is no layer we unpack",
				  layers[i].media ? layers[i].media : "(none)");
			goto out;
		}
	}
	if ((rc = open_store(r, base)) < 0)
		goto out;
	sweep_tmp(r);
	for (i = 0; i < n; i++) {
		r->layer = layers[i].digest;
		if ((rc = get_layer(r, &layers[i], i, n)) < 0)
			goto out;
		if (asprintf(&out->layers[i], "%s/layers/sha256/%s", base, layers[i].hex) < 0) {
			out->layers[i] = NULL;
			rc = fail(r, -ENOMEM, "out of memory");
			goto out;
		}
		out->nlayers++;
		int fd = openat(r->sha, layers[i].hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			out->bytes += tree_bytes(fd);
			close(fd);
		}
	}
	r->layer = NULL;
	snprintf(out->id, sizeof(out->id), "%s", md.digest);
	if ((rc = take_config(r, config, out)) < 0)
		goto out;
	rc = resolve_user(r, out);
out:
	free(layers);
	json_decref(layout);
	json_decref(index);
	json_decref(nested);
	json_decref(manifest);
	json_decref(config);
	return rc;
}

/* --- erofs / squashfs ----------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

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
static int resolve_fsimage(struct res *r, const char *base, struct img *out)
{
	const char *fstype = ends_with(r->spec, ".erofs") ? "erofs" : "squashfs";
	int fd = open(r->spec, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(r, -errno, "%s", strerror(errno));
	struct stat st;
	int rc = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(1u << 20), hex[65];
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = fail(r, -EINVAL, "not a regular file");
		goto out;
	}
	uint64_t done = 0, total = (uint64_t)st.st_size;
	progress(r, 0, 1, 0, total);
	for (;;) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fail(r, -errno, "reading: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		done += (uint64_t)n;
		progress(r, 0, 1, done, total);
	}
	if ((rc = sha256_final(md, hex)) < 0) {
		rc = fail(r, rc, "sha256 failed");
		goto out;
	}
	snprintf(out->id, sizeof(out->id), "sha256:%s", hex);
	out->bytes = done;

	char mnt[PATH_MAX + 32], name[17];
	snprintf(name, sizeof(name), "%.16s", hex);
	snprintf(mnt, sizeof(mnt), "%s/mnt/%s", base, name);
	int state = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int mnts = state < 0 ? -errno : open_dir(state, "mnt", 0700);
	if (state >= 0)
		close(state);
	int point = mnts < 0 ? mnts : open_dir(mnts, name, 0755);
	if (point < 0) {
		if (mnts >= 0)
			close(mnts);
		rc = fail(r, point, "mount point %s: %s", mnt, strerror(-point));
		goto out;
	}
	close(point);
	struct busy b;
	if ((rc = busy_claim(mnts, name, &b)) == 0) {
		if (!is_mount_root(mnt) && (rc = loopdev_mount(fd, fstype, mnt, 0)) < 0)
			fail(r, rc, "mounting %s on %s: %s", fstype, mnt, strerror(-rc));
		busy_release(&b);
	} else {
		fail(r, rc, "%s: %s", mnt, strerror(-rc));
	}
	close(mnts);
	if (rc < 0)
		goto out;
	if (!(out->layers = calloc(1, sizeof(char *))) || !(out->layers[0] = strdup(mnt))) {
		rc = fail(r, -ENOMEM, "out of memory");
		goto out;
	}
	out->nlayers = 1;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}

/* --- The API -------------------------------------------------------------------------- */

bool img_spec_is_image(const char *root)
{
	return root &&
	       (strncmp(root, "oci:", 4) == 0 || ends_with(root, ".erofs") || ends_with(root, ".squashfs"));
}

int img_resolve(const char *state_dir, const char *spec, img_progress_fn fn, void *arg, struct img *out,
		char *err, size_t errsz)
{
	struct res r = { .spec = spec,
			 .err = err,
			 .errsz = errsz,
			 .fn = fn,
			 .arg = arg,
			 .layout = -1,
			 .store = -1,
			 .sha = -1 };
	char base[PATH_MAX];
	memset(out, 0, sizeof(*out));
	if (errsz)
		err[0] = 0;
	if (!img_spec_is_image(spec))
		return fail(&r, -EINVAL, "not an image (oci:PATH[:TAG], FILE.erofs or FILE.squashfs)");
	if (!realpath(state_dir, base))
		return fail(&r, -errno, "state directory %s: %s", state_dir, strerror(errno));
	int rc;
	if (!(out->spec = strdup(spec)))
		rc = fail(&r, -ENOMEM, "out of memory");
	else if (strncmp(spec, "oci:", 4) == 0)
		rc = resolve_oci(&r, base, spec + 4, out);
	else
		rc = resolve_fsimage(&r, base, out);
	out->skipped = r.skipped;
	if (r.layout >= 0)
		close(r.layout);
	if (r.store >= 0)
		close(r.store);
	if (r.sha >= 0)
		close(r.sha);
	if (rc < 0)
		img_free(out);
	return rc;
}

void img_free(struct img *img)
{
	for (unsigned i = 0; i < img->nlayers; i++)
		free(img->layers[i]);
	for (unsigned i = 0; i < img->nenv; i++)
		free(img->env[i]);
	free(img->layers);
	free(img->env);
	free(img->spec);
	free(img->workdir);
	free(img->user);
	memset(img, 0, sizeof(*img));
}
