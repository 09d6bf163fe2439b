/* File actions of the sandbox init: put and get, resolved beneath the work area with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so neither `..` nor a
 * symlink leads out, and opened non-blocking, so a FIFO the agent left never blocks init. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init_int.h"

void *init_grow(void *old, size_t old_cap, size_t cap)
{
	void *p = old ? mremap(old, old_cap, cap, MREMAP_MAYMOVE)
		      : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Maps a path from a request to one relative to the work area; NULL if it lies outside. */
const char *init_work_relative(const char *path)
{
	if (path[0] != '/')
		return path[0] ? path : NULL;
	if (strncmp(path, "/tmp", 4) != 0 || (path[4] != '/' && path[4] != 0))
		return NULL;
	path += 4;
	while (*path == '/')
		path++;
	return *path ? path : NULL;
}

const char *init_resolve(const struct init *in, const char *path, int *dirfd)
{
	*dirfd = in->workfd;
	if (in->rootfd < 0 || path[0] != '/')
		return init_work_relative(path);
	/* A writable root: any path in it (openat2 keeps it beneath, and off /proc, /dev
	 * and /sys, which are other mounts). */
	*dirfd = in->rootfd;
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

int init_open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	/* openat2 refuses O_PATH with any flag outside O_PATH's few (EINVAL): O_NOCTTY only
	 * for real opens. */
	uint64_t extra = (flags & O_PATH) ? O_CLOEXEC : O_CLOEXEC | O_NOCTTY;
	struct open_how how = { .flags = (uint64_t)flags | extra,
				.mode = mode,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	if (!(flags & O_CREAT))
		how.mode = 0;
	int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

void init_file_error(struct outcome *o, int err)
{
	switch (-err) {
	case ENOENT:
	case ENOTDIR:
		o->status = rw_Status_NOT_FOUND;
		o->message = "no such file in the sandbox";
		break;
	case EXDEV:
	case ELOOP:
	case EACCES:
	case EPERM:
	case EROFS:
		o->status = rw_Status_PERMISSION_DENIED;
		o->message = "path escapes the work area or is not accessible";
		break;
	case EFBIG:
		o->status = rw_Status_FILE_TOO_LARGE;
		o->message = "file over the size limit of the profile";
		break;
	case ENOSPC:
	case EDQUOT:
		o->status = rw_Status_FILE_TOO_LARGE;
		o->message = "no space left in the work area";
		break;
	default:
		o->status = rw_Status_BAD_REQUEST;
		o->message = "cannot access the path";
	}
}

void init_put(struct init *in, const rw_PutFile_t *pf, struct outcome *o)
{
	const char *path = rw_PutFile_path(pf);
	int dfd;
	const char *rel = path ? init_resolve(in, path, &dfd) : NULL;
	if (!rel) {
		o->status = rw_Status_PERMISSION_DENIED;
		o->message = "path is outside the work area";
		return;
	}
	const uint8_t *data = NULL;
	size_t len = rw_PutFile_data(pf, &data);
	/* O_NONBLOCK: a FIFO (or socket) the agent left at the path must not block init, and
	 * no O_TRUNC before we know it is a regular file. */
	int fd = init_open_beneath(dfd, rel, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK,
				   (mode_t)(rw_PutFile_mode(pf) & 07777));
	if (fd == -ENXIO) { /* a FIFO nobody reads */
		o->status = rw_Status_BAD_REQUEST;
		o->message = "not a regular file";
		return;
	}
	if (fd < 0) {
		init_file_error(o, fd);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		o->status = rw_Status_BAD_REQUEST;
		o->message = "not a regular file";
		return;
	}
	if (ftruncate(fd, 0) < 0) {
		int e = -errno;
		close(fd);
		init_file_error(o, e);
		return;
	}
	size_t done = 0;
	int rc = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (!rc && fchmod(fd, (mode_t)(rw_PutFile_mode(pf) & 0777)) < 0)
		rc = -errno;
	close(fd);
	if (rc)
		init_file_error(o, rc);
}

void init_get(struct init *in, const rw_GetFile_t *gf, struct outcome *o, uint8_t **buf, size_t *cap)
{
	const char *path = rw_GetFile_path(gf);
	int dfd;
	const char *rel = path ? init_resolve(in, path, &dfd) : NULL;
	if (!rel) {
		o->status = rw_Status_PERMISSION_DENIED;
		o->message = "path is outside the work area";
		return;
	}
	/* Files are capped by what a sandbox may write (file_mb) and by the frame to the pool,
	 * not by the exec output caps: a get of tens of MiB is a transfer, not a log. */
	size_t limit = (size_t)in->p->file_mb << 20;
	if (limit > SBX_MAX_FRAME - 65536)
		limit = SBX_MAX_FRAME - 65536;
	size_t max = rw_GetFile_max_bytes(gf) ? rw_GetFile_max_bytes(gf) : limit;
	if (max > limit)
		max = limit;
	int fd = init_open_beneath(dfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
	if (fd < 0) {
		init_file_error(o, fd);
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		o->status = rw_Status_BAD_REQUEST;
		o->message = "not a regular file";
		return;
	}
	/* Room for the file as it is now (and one byte to see it grew past the cap). */
	size_t want = (size_t)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
	if (*cap < want) {
		uint8_t *p = init_grow(*buf, *cap, want);
		if (!p) {
			close(fd);
			o->status = rw_Status_INTERNAL;
			o->infra = true;
			return;
		}
		*buf = p;
		*cap = want;
	}
	size_t got = 0;
	/* Read one byte past the cap to learn whether the file is larger. */
	while (got < want) {
		ssize_t n = read(fd, *buf + got, want - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	o->kind = rw_Result_FileData;
	o->data = *buf;
	o->data_len = got > max ? max : got;
	o->data_trunc = got > max;
	if (o->data_trunc) {
		o->status = rw_Status_OUTPUT_LIMIT;
		o->message = "file larger than max_bytes (or the profile's file_mb); data holds its "
			     "beginning";
	}
}
