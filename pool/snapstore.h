/* The snapshot store: a directory (snapshot_dir) of captured upper layers. Each snapshot is
 * <dir>/<id>/meta (text: what it was taken from) and <dir>/<id>/root (the layer, in overlayfs
 * format: deletions are 0/0 character devices, opaque directories carry
 * trusted.overlay.opaque). A snapshot is written under <dir>/.tmp-<id> and published by
 * rename, so a pool killed mid-snapshot leaves nothing visible; a snapshot of a sandbox that
 * was itself opened from one names it as its parent (a chain, opened as several layers).
 * Several pools may share the directory (a shared file system): ids are random, publication
 * is a rename, and a snapshot's last use is its directory's mtime. */
#ifndef ROLLOUT_POOL_SNAPSTORE_H
#define ROLLOUT_POOL_SNAPSTORE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_ID_MAX 48

struct snap_meta {
	char id[SNAP_ID_MAX];
	char parent[SNAP_ID_MAX]; /* "" for a snapshot of a bare image */
	char image[80];           /* the image id it lies on */
	char profile[72];
	uint32_t depth; /* 1 + the parent's */
	uint64_t bytes, files, created;
};

/* Ownership rewrite while capturing: files of the sandbox's uid become the image user's, so
 * any sandbox opened from the snapshot (with its own uid) owns them again. */
struct snap_owner {
	uint32_t from;     /* the sandbox's uid (and gid); UINT32_MAX: no rewrite */
	uint32_t uid, gid; /* the image user's */
};

/* Captures the layer under upper_fd (a directory) as a new snapshot, written to staging (a
 * fast file system while the sandbox is frozen, from which snap_publish moves it into dir;
 * or dir itself) with parents read from dir. With parent set and depth at max_depth, the
 * parent chain is merged into it (flattened: depth 1 on the image). Fills out (id, bytes,
 * files). 0 or -errno with a message in err. */
int snap_capture(const char *dir, const char *staging, int upper_fd, const struct snap_owner *own,
		 const char *parent, const char *image, const char *profile, uint32_t max_depth,
		 struct snap_meta *out, char *err, size_t errsz);
/* Copies snapshot id from staging into dir (published by rename) and removes it from
 * staging. 0 or -errno with err. */
int snap_publish(const char *dir, const char *staging, const char *id, char *err, size_t errsz);
int snap_read_meta(const char *dir, const char *id, struct snap_meta *m);
/* The layer directories of id and its parents, top first (at most max). Marks it used now.
 * 0, -ENOENT (id or a parent gone), -EINVAL (not a snapshot id), -E2BIG. */
int snap_chain(const char *dir, const char *id, char (*layers)[PATH_MAX], unsigned max, unsigned *n,
	       struct snap_meta *top);
/* Whether s could be a snapshot id (what snap_capture makes): checked before any path use. */
bool snap_id_valid(const char *s);

struct snap_stats {
	uint64_t count, bytes, evicted;
};
/* Removes snapshots unused for ttl_s, then the least recently used while the store is over
 * budget_bytes; never one in_use says a sandbox of this pool stands on, nor the parent of one
 * that stays. Also clears what a killed pool left (.tmp-*, .del-*) once an hour old. */
int snap_gc(const char *dir, uint64_t ttl_s, uint64_t budget_bytes, bool (*in_use)(void *arg, const char *id),
	    void *arg, struct snap_stats *st);
/* Removes a tree beneath dirfd (no symlink followed); 0 or -errno. */
int snap_rmtree(int dirfd, const char *name);

#endif
