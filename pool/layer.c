/* Unpacking one layer blob into a directory (layer.h). Extraction is our own, on top of
 * libarchive's reader, with *at calls from the layer's root fd and O_NOFOLLOW on every
 * component: archive_write_disk resolves paths against the process's cwd, which a threaded
 * pool cannot change, and it cannot turn OCI whiteouts into overlayfs ones. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "image_int.h"
#include "layer.h"

#define IMG_CHUNK (64u << 10)

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
		return keep_dir ? 1 : img__rm_tree_at(dfd, name);
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
		return img__fail(u->r, -EINVAL, "an entry with an unreadable name");
	int rc = clean_path(raw, path, sizeof(path));
	if (rc < 0)
		return img__fail(u->r, rc, "entry %s: absolute path, '..' or too long: refused", raw);
	unsigned type = archive_entry_filetype(e);
	const char *link = archive_entry_hardlink(e);
	if (path[0] == 0) {
		if (type != AE_IFDIR || link)
			return img__fail(u->r, -EPERM, "entry %s: the layer root as no directory: refused",
					 raw);
		return add_fix(u, "", e) < 0 ? img__fail(u->r, -ENOMEM, "out of memory") : 0;
	}
	const char *name;
	int dfd = open_parent(u->root, path, true, &name);
	if (dfd < 0)
		return img__fail(u->r, dfd == -ENOTDIR || dfd == -ELOOP ? -EPERM : dfd,
				 "entry %s: path through a symlink or a non-directory: refused (%s)", raw,
				 img__errstr(dfd, ebuf, sizeof(ebuf)));
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
		return img__fail(u->r, rc, "entry %s: %s: %s", raw, u->what ? u->what : "unpacking",
				 img__errstr(rc, ebuf, sizeof(ebuf)));
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
		img__progress(b->r, b->index, b->n, b->done, b->size);
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
		return img__fail(b->r, -b->err, "reading the blob: %s", strerror(b->err));
	char hex[65];
	if (img__sha256_final(b->md, hex) < 0)
		return img__fail(b->r, -EIO, "sha256 failed");
	if (b->done != d->size)
		return img__fail(b->r, -EBADMSG, "blob is %llu bytes, the manifest says %llu: refused",
				 (unsigned long long)b->done, (unsigned long long)d->size);
	if (strcmp(hex, d->hex) != 0)
		return img__fail(b->r, -EBADMSG, "digest mismatch (blob is sha256:%s): refused", hex);
	return 0;
}

/* Unpacks the blob open at fd into the directory root. Refuses the first hostile entry. */
int layer_extract(struct res *r, const struct desc *d, int fd, int root, uint64_t index, uint64_t n)
{
	struct unpack u = { .r = r, .root = root, .owner = geteuid() == 0 };
	char why[256];
	struct blobread *b = calloc(1, sizeof(*b));
	struct archive *a = archive_read_new();
	int rc = -ENOMEM;
	if (!b || !a || !(b->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(b->md, EVP_sha256(), NULL)) {
		img__fail(r, rc, "out of memory");
		goto out;
	}
	*b = (struct blobread){ .r = r, .fd = fd, .md = b->md, .size = d->size, .index = index, .n = n };
	img__progress(r, index, n, 0, d->size);
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
		img__fail(r, rc, "%s: %s", u.what, img__errstr(rc, ebuf, sizeof(ebuf)));
	}
	goto out;
bad_archive:
	/* A damaged blob is first a digest or size mismatch; only a blob that checks out is a
	 * bad archive (truncated, not a tar). */
	snprintf(why, sizeof(why), "%s", archive_error_string(a) ? archive_error_string(a) : "?");
	if (r->errsz)
		r->err[0] = 0;
	if ((rc = blob_check(b, d)) == 0)
		rc = img__fail(r, -EIO, "not a readable tar layer: %s: refused", why);
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
