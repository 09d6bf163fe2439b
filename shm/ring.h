/* shm: the shared-memory segment between a trainer and rolloutd and the two SPSC rings in
 * it. rolloutd creates a segment (sealed memfd, pages bound to a NUMA node) and passes its
 * fd over the attach socket; the trainer attaches, checking seals, size and the ABI header.
 * Each side then holds a writer on one ring and a reader on the other.
 *
 * Writing: shm_writer_reserve() returns room in the ring where the caller builds the record
 * in place (a FlatBuffer, say); shm_writer_commit() fixes its final length; any number of
 * commits become visible together with shm_writer_publish(). A writer that dies before
 * publishing leaves nothing visible.
 *
 * Reading: shm_reader_peek() checks the next record against the reader's own copy of the
 * ring geometry, copies it into reader-owned memory and returns that copy, so the writer
 * cannot change a record while it is being verified; shm_reader_release() consumes it.
 * Anything inconsistent read from the segment breaks the reader for good (ROLLOUT_E_CORRUPT)
 * and is counted; nothing out of bounds is ever read.
 *
 * Waiting: spin for spin_ns, then announce the sleep in the ring's wait slot and sleep on a
 * futex, or on an eventfd that the peer signals (so a daemon can sleep in epoll). A wait
 * also watches a liveness fd (the attach socket or a pidfd) and returns ROLLOUT_E_PEER_DEAD
 * when the peer is gone. All functions return 0 (or a count) or a negative code; none of
 * them logs. A writer and a reader are each used by one thread at a time.
 */
#ifndef ROLLOUT_SHM_RING_H
#define ROLLOUT_SHM_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_abi.h"

#define SHM_DEFAULT_RING_SIZE  (1u << 20)
#define SHM_DEFAULT_MAX_RECORD (64u << 10)
#define SHM_DEFAULT_SPIN_NS    20000u

enum shm_ring_id { SHM_SQ = 0, SHM_CQ = 1 };

struct shm_seg_opts {
	uint32_t sq_size;       /* data bytes, power of two; 0: SHM_DEFAULT_RING_SIZE */
	uint32_t cq_size;       /* idem */
	uint32_t sq_max_record; /* 0: min(SHM_DEFAULT_MAX_RECORD, size / 2) */
	uint32_t cq_max_record;
	int memory_node;    /* bind the pages to this NUMA node; -1: no binding */
	bool try_hugepages; /* back the segment with hugetlb pages when the system has them */
	uint32_t features;  /* SHM_FEAT_* to advertise (EVENTFD_WAKE) */
	uint64_t epoch;     /* creator's start epoch, stored in the header */
};

/* A mapped segment. The creator owns fd and mapping; the attacher owns its own fd (the one
 * received) and mapping. hdr is this side's private copy, validated once: the ring code uses
 * it, never the shared header. */
struct shm_seg {
	int fd;
	void *base;
	size_t size;
	bool hugepages;
	bool creator;
	struct shm_seg_hdr hdr;
};

/* Creates, sizes, seals (shrink, grow, seal), maps and, when asked, binds and prefaults the
 * segment. Binding falls back silently to no binding where the kernel or machine has no
 * NUMA support; shm_seg_page_node() tells where the pages really are. */
int shm_seg_create(struct shm_seg *seg, const struct shm_seg_opts *opts);
/* Maps a received segment fd after checking: it is a memfd sealed against shrinking and
 * growing, fstat() size equals expected_size (when nonzero) and the header's seg_size, and
 * the header (magic, version, features, ring geometry) is consistent. Takes ownership of fd
 * on success only. ROLLOUT_E_ABI for a header mismatch, -EPERM for missing seals,
 * -EMSGSIZE for a size mismatch. */
int shm_seg_attach(struct shm_seg *seg, int fd, uint64_t expected_size);
/* Marks the segment CLOSING (so the peer stops waiting), unmaps and closes the fd. */
void shm_seg_close(struct shm_seg *seg);
/* NUMA node of the pages of [addr, addr+len) as the kernel reports it (move_pages query):
 * the node if every page is on the same node, -EXDEV if they differ, -ENOSYS without NUMA. */
int shm_page_node(const void *addr, size_t len);
/* Bumps this side's heartbeat word in the liveness line. */
void shm_seg_heartbeat(struct shm_seg *seg);
/* The liveness state word; SHM_STATE_CLOSING once either side said it is going away. */
uint32_t shm_seg_state(const struct shm_seg *seg);

struct shm_ring_stats {
	uint64_t records; /* records committed (writer) or released (reader) */
	uint64_t bytes;   /* payload bytes, same */
	uint64_t refused; /* inconsistencies found in the shared segment (reader or writer) */
	uint64_t sleeps;  /* times this side went to sleep */
	uint64_t wakeups; /* times this side woke its peer */
};

/* Geometry of a ring, copied once from the validated header. */
struct shm_ring_geom {
	uint8_t *data;
	struct shm_ring_ctl *ctl;
	uint32_t size;
	uint32_t mask;
	uint32_t max_record;
};

struct shm_waitcfg {
	uint32_t spin_ns; /* busy-poll this long before sleeping */
	int wait_fd;      /* eventfd this side sleeps on instead of the futex; -1: futex */
	int wake_fd;      /* eventfd to signal when waking the peer; -1: none (futex only) */
	int peer_fd;      /* attach socket or pidfd of the peer; -1: none */
};

struct shm_writer {
	struct shm_ring_geom g;
	struct shm_waitcfg w;
	uint64_t tail;      /* next byte to reserve at (includes committed, unpublished) */
	uint64_t published; /* last tail stored to the segment */
	uint64_t head;      /* consumer position as last read and checked */
	uint32_t res_len;   /* payload bytes reserved by the pending reserve, 0 if none */
	uint32_t res_pad;   /* padding that precedes the pending record */
	int broken;         /* sticky error once the segment proved inconsistent */
	const struct shm_seg *seg;
	struct shm_ring_stats stats;
};

struct shm_reader {
	struct shm_ring_geom g;
	struct shm_waitcfg w;
	uint64_t head;      /* next byte to read (includes released, unpublished) */
	uint64_t published; /* last head stored to the segment */
	uint64_t tail;      /* producer position as last read and checked */
	uint32_t cur_len;   /* payload bytes of the peeked record, 0 if none */
	uint32_t cur_span;  /* bytes the peeked record (and any padding before it) occupies */
	uint8_t *copy;      /* reader-owned copy of the peeked record; max_record bytes */
	int broken;
	const struct shm_seg *seg;
	struct shm_ring_stats stats;
};

/* Sets up this side's end of ring `id`. The writer of SHM_SQ is the client (trainer), the
 * writer of SHM_CQ the creator (rolloutd); the library does not enforce who is who. The
 * reader allocates its copy buffer here (max_record bytes) and frees it in _destroy. */
int shm_writer_init(struct shm_writer *w, const struct shm_seg *seg, enum shm_ring_id id,
		    const struct shm_waitcfg *cfg);
int shm_reader_init(struct shm_reader *r, const struct shm_seg *seg, enum shm_ring_id id,
		    const struct shm_waitcfg *cfg);
void shm_reader_destroy(struct shm_reader *r);
/* Waiting defaults: spin SHM_DEFAULT_SPIN_NS, futex, no liveness fd. */
void shm_waitcfg_default(struct shm_waitcfg *cfg);

/* Returns room for a payload of up to len bytes (8-byte aligned), or NULL with *err set:
 * -EAGAIN when the ring is full now, -EINVAL for len 0, ROLLOUT_E_TOO_BIG above max_record,
 * -EBUSY when a reservation is already pending, ROLLOUT_E_CORRUPT when the consumer index
 * in the segment is impossible. The room stays valid until commit or the next reserve. */
void *shm_writer_reserve(struct shm_writer *w, uint32_t len, int *err);
/* Ends the pending reservation with a record of used bytes (1..len reserved). Not yet
 * visible to the reader. */
int shm_writer_commit(struct shm_writer *w, uint32_t used);
/* Drops the pending reservation. */
void shm_writer_abort(struct shm_writer *w);
/* Makes every committed record visible and wakes the reader if it sleeps. Returns the
 * number of bytes newly published. */
int shm_writer_publish(struct shm_writer *w);
/* Convenience: reserve + copy + commit + publish. */
int shm_writer_send(struct shm_writer *w, const void *data, uint32_t len);
/* Sleeps until a record of len bytes would fit, the peer dies (ROLLOUT_E_PEER_DEAD) or
 * closes (ROLLOUT_E_SHUTDOWN), or timeout_ms passes (-ETIMEDOUT; -1 waits forever). */
int shm_writer_wait(struct shm_writer *w, uint32_t len, int timeout_ms);

/* Next record: copies it out of the segment and points *data at the copy (valid until
 * release). -EAGAIN when empty, ROLLOUT_E_CORRUPT when the segment is inconsistent. */
int shm_reader_peek(struct shm_reader *r, const void **data, uint32_t *len);
/* Consumes the peeked record. Space is handed back to the writer in batches: at the latest
 * when peek finds the ring empty or a quarter of the ring is pending, or on flush. */
void shm_reader_release(struct shm_reader *r);
/* Hands every released byte back to the writer now (and wakes it if it waits for space). */
void shm_reader_flush(struct shm_reader *r);
/* Sleeps until a record is available; returns as shm_writer_wait(). */
int shm_reader_wait(struct shm_reader *r, int timeout_ms);
/* For event loops: announces that this side is about to sleep on its wait_fd. Returns 0 when
 * it may sleep, -EAGAIN when records are already there (do not sleep). After waking, call
 * shm_reader_disarm() to drain the eventfd. */
int shm_reader_arm(struct shm_reader *r);
void shm_reader_disarm(struct shm_reader *r);
/* Records visible but not yet peeked or released, in bytes (0 when broken). */
uint64_t shm_reader_pending(const struct shm_reader *r);

/* Fd passing over a unix socket. Sends len bytes and nfds descriptors in one message. */
int shm_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Receives one message of at most cap bytes and at most maxfds descriptors (O_CLOEXEC);
 * descriptors beyond maxfds, or any that arrive with a truncated control message, are
 * closed. Returns the bytes received (0 on EOF) and sets *nfds. */
int shm_recv_fds(int sock, void *buf, size_t cap, int *fds, unsigned maxfds, unsigned *nfds);
/* Credentials of a connected unix socket's peer (SO_PEERCRED): 0, and pid/uid/gid set. */
int shm_peer_cred(int sock, int *pid, unsigned *uid, unsigned *gid);
/* 1 when the liveness fd says the peer is gone (socket EOF/hangup, pidfd readable), else 0. */
int shm_peer_gone(int fd);

#endif
