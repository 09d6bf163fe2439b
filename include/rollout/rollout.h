/* librollout: the trainer's side of rolloutd. A trainer process connects once, then keeps
 * many sandbox actions in flight through a shared-memory ring: every call below only
 * builds a record in place and returns; completions arrive in the completion ring and are
 * read with rollout_next(). Nothing here blocks except rollout_wait() and rollout_connect().
 *
 * Threading: a client is used by one thread at a time (the Python binding serialises).
 * Errors: 0 / a count, or a negative code (-errno or ROLLOUT_E_*, see rollout/error.h and
 * rollout_strerror()). The library never prints. */
#ifndef ROLLOUT_ROLLOUT_H
#define ROLLOUT_ROLLOUT_H

#include <errno.h> /* return codes are -errno values */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rollout/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ROLLOUT_DEFAULT_SOCKET "/run/rolloutd/rolloutd.sock"

/* Version of this header; rollout_version() gives the library's (they match unless the
 * program was built against another release). Before 1.0 a minor release may change the
 * layout of the public structs (0.3: struct rollout_completion grew): rebuild against it. */
#define ROLLOUT_VERSION_MAJOR 0
#define ROLLOUT_VERSION_MINOR 3
#define ROLLOUT_VERSION_PATCH 0
#define ROLLOUT_VERSION_HEX \
	((ROLLOUT_VERSION_MAJOR << 16) | (ROLLOUT_VERSION_MINOR << 8) | ROLLOUT_VERSION_PATCH)

/* The library's version as ROLLOUT_VERSION_HEX encodes it. */
ROLLOUT_API unsigned rollout_version(void);

typedef struct rollout_client rollout_client;

struct rollout_connect_opts {
	const char *socket_path; /* NULL: $ROLLOUTD_SOCKET or ROLLOUT_DEFAULT_SOCKET */
	int gpu;                 /* GPU this trainer drives, -1: any */
	const char *name;        /* label for logs and metrics; NULL: "trainer" */
	uint32_t sq_bytes;       /* ring sizes; 0: rolloutd's defaults */
	uint32_t cq_bytes;
	int timeout_ms; /* attach timeout; 0: 5000 */
};

/* Connects to rolloutd and maps the shared rings. *out is owned by the caller and freed
 * with rollout_disconnect(). */
ROLLOUT_API int rollout_connect(const struct rollout_connect_opts *opts, rollout_client **out);
/* Detaches: rolloutd closes this trainer's sandboxes. Pending completions are dropped. */
ROLLOUT_API void rollout_disconnect(rollout_client *c);
/* An fd that becomes readable when completions may be waiting (register it with poll,
 * epoll or asyncio). Call rollout_arm() before sleeping on it. */
ROLLOUT_API int rollout_fd(const rollout_client *c);
/* Announces that the caller is about to sleep on rollout_fd(): 0 to sleep, -EAGAIN when
 * completions are already there. */
ROLLOUT_API int rollout_arm(rollout_client *c);
/* The attach socket to rolloutd. It becomes readable (EOF, hang-up) when rolloutd goes away,
 * which rollout_fd() never shows: an event loop that sleeps on rollout_fd() registers this
 * one too and calls rollout_check() when it fires, or it may wait forever for completions
 * that will not come. Owned by the client: never read, write or close it; valid until
 * rollout_disconnect(). */
ROLLOUT_API int rollout_peer_fd(const rollout_client *c);
/* Does not block: 0 while rolloutd serves this client; ROLLOUT_E_PEER_DEAD once it is gone,
 * ROLLOUT_E_SHUTDOWN once it has closed this client's segment, ROLLOUT_E_CORRUPT when it
 * corrupted a ring. Any of these is final: completions already in the ring can still be
 * read with rollout_next(), nothing else will arrive. rollout_wait() and
 * rollout_wait_space() report the same codes while they sleep. */
ROLLOUT_API int rollout_check(rollout_client *c);

struct rollout_env {
	const char *name, *value;
};

struct rollout_exec {
	const char *const *argv; /* NULL-terminated; or: */
	const char *shell;       /* a /bin/sh -c string (exactly one of argv and shell) */
	const void *stdin_data;
	size_t stdin_len;
	const struct rollout_env *env;
	size_t env_len;
	const char *cwd;     /* NULL: where the last step ran (initially the work area) */
	uint32_t timeout_ms; /* 0: the profile's default */
	uint32_t output_cap; /* bytes per stream; 0: the profile's default */
	uint32_t flags;      /* ROLLOUT_EXEC_* */
};

/* rollout_exec.flags: output arrives while the command runs, as completions with partial
 * set (stdout_data/stderr_data: the new bytes, at stdout_offset/stderr_offset of their
 * stream), before the request's one completion, which still holds all the output. Partial
 * records are best effort: one may be dropped when the trainer falls behind (an offset
 * then jumps), never reordered. */
#define ROLLOUT_EXEC_STREAM 0x1u

/* The largest request or completion record: one over the ring's max_record is carried in
 * pieces (built apart, written in order as rolloutd reads them; see rollout_flush), so a
 * put_file or a result of tens of MiB works whatever max_record is. rolloutd's own limit,
 * max_transfer_mb, may be lower: a request over it completes BAD_REQUEST. */
#define ROLLOUT_MAX_TRANSFER (64u << 20)

/* Submissions. Each takes a request id chosen by the caller (unique among its requests in
 * flight) and an optional deadline (CLOCK_MONOTONIC ns, 0: none). They return 0 when the
 * request is in the ring, -EAGAIN when the ring is full (read completions, or
 * rollout_wait_space(), then retry), ROLLOUT_E_TOO_BIG when it can never fit. Requests
 * become visible to rolloutd at rollout_flush() (or when the ring fills up). */
ROLLOUT_API int rollout_open(rollout_client *c, uint64_t request_id, const char *profile,
			     uint64_t deadline_ns);

/* What rollout_open_ex opens. Zero-initialise it and set what you need: every zero field
 * means the same as rollout_open. */
struct rollout_open_opts {
	const char *profile;       /* NULL: "default" */
	const char *snapshot;      /* start from this snapshot (a completion's snapshot or checkpoint)
				    * instead of the profile's bare image; the pool that takes the
				    * open must see the snapshot store. NULL: the image */
	const char *group;         /* GRPO group label (placement, metrics); NULL: none */
	uint32_t lease_ms;         /* 0: the pool's default lease */
	uint32_t checkpoint_every; /* after every N successful Exec and PutFile the pool
				    * snapshots the sandbox before answering that step, and its
				    * completion names the checkpoint; 0: only rollout_snapshot */
};

/* rollout_open with options (a snapshot to start from, automatic checkpoints). Strings are
 * copied into the request: they need not outlive the call. */
ROLLOUT_API int rollout_open_ex(rollout_client *c, uint64_t request_id, const struct rollout_open_opts *o,
				uint64_t deadline_ns);
ROLLOUT_API int rollout_exec(rollout_client *c, uint64_t request_id, uint64_t sandbox,
			     const struct rollout_exec *e, uint64_t deadline_ns);
ROLLOUT_API int rollout_put_file(rollout_client *c, uint64_t request_id, uint64_t sandbox, const char *path,
				 const void *data, size_t len, uint32_t mode);
ROLLOUT_API int rollout_get_file(rollout_client *c, uint64_t request_id, uint64_t sandbox, const char *path,
				 uint32_t max_bytes);
ROLLOUT_API int rollout_close(rollout_client *c, uint64_t request_id, uint64_t sandbox);
/* Sends signo to the exec submitted as target_request_id (0: the one running now) in the
 * sandbox: to its process group while it runs; a target still queued behind another
 * action is cancelled (it completes CANCELLED, never runs). Its own completion is OK when
 * the target was found, NOT_FOUND when it had ended; the exec then completes as usual
 * (signal set). */
ROLLOUT_API int rollout_signal(rollout_client *c, uint64_t request_id, uint64_t sandbox,
			       uint64_t target_request_id, int signo);
/* Captures the sandbox's writable root (files, deletions, modes, links; not processes) into
 * the pool's snapshot store, the sandbox frozen meanwhile. Its completion names the
 * snapshot (snapshot, snapshot_bytes, snapshot_files, frozen_us); open new sandboxes from it
 * with rollout_open_ex. With checkpoint, it also becomes the sandbox's checkpoint (the
 * completion's checkpoint and checkpoint_request_id), which a SANDBOX_LOST of the sandbox
 * hands back. Needs an image profile. */
ROLLOUT_API int rollout_snapshot(rollout_client *c, uint64_t request_id, uint64_t sandbox, bool checkpoint);
/* Makes the requests submitted so far visible to rolloutd. A request over max_record that
 * did not fit at once is written here, piece by piece as rolloutd reads them (this may
 * sleep for ring space); until it is in, later submissions return -EAGAIN. */
ROLLOUT_API int rollout_flush(rollout_client *c);
/* Sleeps until a request of len bytes would fit in the submission ring (len 0: the size the
 * last submission refused with -EAGAIN needs, so the retry fits; -EINVAL when none was
 * refused). Returns 0, -ETIMEDOUT, ROLLOUT_E_TOO_BIG, or the codes of rollout_check() when
 * rolloutd goes away: a caller retrying a submission stops on anything but 0 and
 * -ETIMEDOUT. */
ROLLOUT_API int rollout_wait_space(rollout_client *c, uint32_t len, int timeout_ms);

/* A completion. Pointers stay valid until the next rollout_next() on this client. */
struct rollout_completion {
	uint64_t request_id;
	int status;        /* rollout.wire.Status: 0 OK, 1 TIMEOUT, 2 SANDBOX_LOST, ... */
	bool infra_failed; /* the infrastructure failed, not the action */
	const char *message;
	uint64_t sandbox; /* open: the new sandbox */
	int exit_code, signal;
	const uint8_t *stdout_data, *stderr_data, *file_data;
	size_t stdout_len, stderr_len, file_len;
	bool stdout_truncated, stderr_truncated, file_truncated;
	uint64_t wall_us, cpu_us, peak_memory_kib;
	bool partial; /* streamed output of an exec (ROLLOUT_EXEC_STREAM), not its completion */
	uint64_t stdout_offset, stderr_offset; /* partial: where the bytes sit in their stream */
	/* snapshot: the id to open from (rollout_open_opts.snapshot), NULL otherwise; what it
	 * captured (bytes of this layer, entries) and how long the sandbox was frozen. */
	const char *snapshot;
	uint64_t snapshot_bytes, snapshot_files, frozen_us;
	/* The sandbox's checkpoint: set on a step that made one (checkpoint_every, or a
	 * snapshot with checkpoint), and on SANDBOX_LOST of a sandbox that has one: open from
	 * it (rollout_open_opts.snapshot) to continue the task; it holds the effects of every
	 * step up to checkpoint_request_id, and none after. NULL: none. Nothing is re-run: the
	 * steps after checkpoint_request_id are the caller's to redo. */
	const char *checkpoint;
	uint64_t checkpoint_request_id;
};

/* Takes the next completion: 1 when *out is filled, 0 when none is waiting. */
ROLLOUT_API int rollout_next(rollout_client *c, struct rollout_completion *out);
/* Sleeps until a completion is waiting, rolloutd goes away (ROLLOUT_E_PEER_DEAD or
 * ROLLOUT_E_SHUTDOWN) or timeout_ms passes (-ETIMEDOUT; -1 waits forever). Flushes first. */
ROLLOUT_API int rollout_wait(rollout_client *c, int timeout_ms);
/* Releases the completion rollout_next() returned last (its pointers become invalid); the
 * next rollout_next() does it implicitly. */
ROLLOUT_API void rollout_release(rollout_client *c);

/* Blocking wrappers for simple programs that have nothing else in flight on this client:
 * submit, flush, and wait up to timeout_ms for that request's completion (-1: forever).
 * A completion of another request is ROLLOUT_E_PROTOCOL (use the asynchronous calls then).
 * *out stays valid until the next call on the client. */
ROLLOUT_API int rollout_open_sync(rollout_client *c, const char *profile, struct rollout_completion *out,
				  int timeout_ms);
ROLLOUT_API int rollout_exec_sync(rollout_client *c, uint64_t sandbox, const struct rollout_exec *e,
				  struct rollout_completion *out, int timeout_ms);
ROLLOUT_API int rollout_close_sync(rollout_client *c, uint64_t sandbox, struct rollout_completion *out,
				   int timeout_ms);

/* Name of a status value ("OK", "TIMEOUT", ...). */
ROLLOUT_API const char *rollout_status_name(int status);

#ifdef __cplusplus
}
#endif
#endif
