/* What the sandbox init's parts share (init.c: the request loop and exec; initfile.c:
 * put and get beneath the work area). Only those two files include it. */
#ifndef ROLLOUT_POOL_INIT_INT_H
#define ROLLOUT_POOL_INIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rollout_wire.h"
#include "sandbox.h"

struct init {
	const struct sbx_profile *p;
	int fd;
	int workfd; /* O_PATH of /tmp (image sandboxes: of the working directory) */
	int rootfd; /* image sandboxes (a writable root): O_PATH of /; else -1 */
	uint8_t *in;
	size_t in_cap;
	uint8_t *out;
	size_t out_cap;
	/* the request being served (streamed output chunks carry them) */
	uint64_t dispatch, request_id;
};

/* What one action produced, before it becomes a Completion. */
struct outcome {
	int status;
	bool infra;
	const char *message;
	int kind; /* rw_Result_* */
	/* exec */
	int exit_code, signal;
	const uint8_t *so, *se;
	size_t so_len, se_len;
	bool so_trunc, se_trunc;
	uint64_t wall_us, cpu_us, peak_kib;
	/* get file */
	const uint8_t *data;
	size_t data_len;
	bool data_trunc;
};

/* mmap'ed buffers: init is pid 1 of a sandbox and keeps its heap small. NULL on failure. */
void *init_grow(void *old, size_t old_cap, size_t cap);
/* A request path relative to the work area (/tmp), or NULL when it lies outside. */
const char *init_work_relative(const char *path);
/* Where a request path resolves: *dirfd and the path relative to it, or NULL when it lies
 * outside what the sandbox may name (the work area; in image sandboxes, the whole root). */
const char *init_resolve(const struct init *in, const char *path, int *dirfd);
/* openat2 beneath dirfd, no magic links, no other mounts: an fd or -errno. */
int init_open_beneath(int dirfd, const char *rel, int flags, mode_t mode);
/* Maps -errno of a file operation to a status and message in o. */
void init_file_error(struct outcome *o, int err);
void init_put(struct init *in, const rw_PutFile_t *pf, struct outcome *o);
/* *buf (capacity *cap, grown as needed) holds the data o points to. */
void init_get(struct init *in, const rw_GetFile_t *gf, struct outcome *o, uint8_t **buf, size_t *cap);

#endif
