/* The shared-memory segment between a trainer (librollout) and rolloutd: one sealed memfd
 * holding a header page and two single-producer/single-consumer rings of variable-length
 * records. This header is the ABI both processes compile against. Fields are fixed-width,
 * only ever appended into reserved space, and checked on attach (magic, version, features,
 * sizes, offsets). Nothing in here is trusted by the side that did not write it.
 *
 *   offset 0                  struct shm_seg_hdr (one page; creator writes it once)
 *   hdr.sq.ctl_off            struct shm_ring_ctl of the submission ring
 *   hdr.cq.ctl_off            struct shm_ring_ctl of the completion ring
 *   hdr.sq.data_off           submission ring data, hdr.sq.size bytes (power of two)
 *   hdr.cq.data_off           completion ring data, hdr.cq.size bytes
 *
 * A record is an 8-byte header followed by its payload, padded to 8 bytes. Records never
 * straddle the end of the data area: the writer fills the tail with one padding record
 * and starts again at offset 0. Indices are free-running byte counts (uint64_t); position
 * in the data area is index & (size - 1).
 */
#ifndef ROLLOUT_SHM_RING_ABI_H
#define ROLLOUT_SHM_RING_ABI_H

#include <stddef.h>
#include <stdint.h>

#define SHM_SEG_MAGIC       0x31474e49524c5452ull /* "RTLRING1" little-endian */
#define SHM_SEG_ABI_VERSION 1u
#define SHM_CACHELINE       64u

/* Feature bits: a reader refuses a segment with bits it does not know. */
#define SHM_FEAT_EVENTFD_WAKE (1u << 0) /* wakers also signal an eventfd passed at attach */
#define SHM_FEAT_HUGEPAGES    (1u << 1) /* informational: the memfd is hugetlb-backed */
#define SHM_FEAT_KNOWN        (SHM_FEAT_EVENTFD_WAKE | SHM_FEAT_HUGEPAGES)

#define SHM_REC_HDR_SIZE 8u
#define SHM_REC_ALIGN    8u
#define SHM_REC_DATA     1u /* a record carrying payload */
#define SHM_REC_PAD      2u /* filler up to the end of the data area; len covers the rest */

#define SHM_RING_MIN_SIZE 4096u
#define SHM_RING_MAX_SIZE (1u << 30)

/* Segment state (shm_seg_hdr.state): a side that shuts down says so, so its peer stops
 * with a clear error instead of waiting for a liveness timeout. */
#define SHM_STATE_LIVE    1u
#define SHM_STATE_CLOSING 2u /* set by either side before it goes away */

struct shm_rec_hdr {
	uint32_t len;   /* DATA: payload bytes (1..max_record); PAD: bytes to the end of data */
	uint16_t type;  /* SHM_REC_DATA or SHM_REC_PAD */
	uint16_t flags; /* none defined; written 0, ignored */
};

/* Where one ring lives in the segment. */
struct shm_ring_desc {
	uint64_t ctl_off;    /* offset of struct shm_ring_ctl; cache-line aligned */
	uint64_t data_off;   /* offset of the data area; page aligned */
	uint32_t size;       /* data area bytes; power of two, SHM_RING_MIN..MAX_SIZE */
	uint32_t max_record; /* largest payload a record may carry; <= size / 2 */
	uint64_t reserved[2];
};

/* A sleeping side publishes `waiting`, then sleeps on `seq` (futex word) or its eventfd;
 * the waker clears `waiting` and bumps `seq`. */
struct shm_wait_slot {
	uint32_t waiting; /* written by the sleeper (1) and the waker (0) */
	uint32_t seq;     /* futex word; written by the waker */
	uint64_t wakeups; /* written by the waker: wake-ups delivered, for statistics */
};

/* Control block of one ring. Each line is written by exactly one side. */
struct shm_ring_ctl {
	/* Written by the producer only. Bytes ever published. */
	uint64_t tail;
	uint8_t pad0[SHM_CACHELINE - 8];
	/* Written by the consumer only. Bytes ever released. */
	uint64_t head;
	uint8_t pad1[SHM_CACHELINE - 8];
	/* The consumer sleeps here waiting for records. */
	struct shm_wait_slot data_wait;
	uint8_t pad2[SHM_CACHELINE - sizeof(struct shm_wait_slot)];
	/* The producer sleeps here waiting for space. */
	struct shm_wait_slot space_wait;
	uint8_t pad3[SHM_CACHELINE - sizeof(struct shm_wait_slot)];
};

/* Liveness: each side bumps its heartbeat while it runs; epoch is the creator's start
 * epoch, so records of an earlier rolloutd instance are recognised as such. */
struct shm_liveness {
	uint64_t epoch;            /* written once by the creator */
	uint64_t owner_heartbeat;  /* written by the creator (rolloutd), monotonic ns */
	uint64_t client_heartbeat; /* written by the attaching side (trainer), monotonic ns */
	uint32_t state;            /* SHM_STATE_*; either side may move it to CLOSING */
	uint32_t reserved0;
};

struct shm_seg_hdr {
	uint64_t magic;          /* SHM_SEG_MAGIC */
	uint32_t abi_version;    /* SHM_SEG_ABI_VERSION */
	uint32_t features;       /* SHM_FEAT_* */
	uint64_t seg_size;       /* memfd size; equals fstat() of the fd */
	uint32_t hdr_size;       /* sizeof(struct shm_seg_hdr) */
	uint32_t page_size;      /* page size the segment was laid out with */
	struct shm_ring_desc sq; /* submission ring: trainer writes, rolloutd reads */
	struct shm_ring_desc cq; /* completion ring: rolloutd writes, trainer reads */
	int32_t memory_node;     /* NUMA node the pages are bound to, -1 if none */
	uint32_t reserved0;
	uint64_t reserved[8];
	uint8_t pad0[SHM_CACHELINE * 4 - 184];
	struct shm_liveness live; /* on its own line: written repeatedly */
	uint8_t pad1[SHM_CACHELINE - sizeof(struct shm_liveness)];
};

_Static_assert(sizeof(struct shm_rec_hdr) == SHM_REC_HDR_SIZE, "record header is ABI");
_Static_assert(sizeof(struct shm_ring_desc) == 40, "ring descriptor is ABI");
_Static_assert(sizeof(struct shm_wait_slot) == 16, "wait slot is ABI");
_Static_assert(sizeof(struct shm_ring_ctl) == 4 * SHM_CACHELINE, "ring control is 4 lines");
_Static_assert(offsetof(struct shm_ring_ctl, head) == SHM_CACHELINE, "head on its own line");
_Static_assert(offsetof(struct shm_ring_ctl, data_wait) == 2 * SHM_CACHELINE, "data wait line");
_Static_assert(offsetof(struct shm_ring_ctl, space_wait) == 3 * SHM_CACHELINE, "space wait line");
_Static_assert(sizeof(struct shm_liveness) == 32, "liveness is ABI");
_Static_assert(offsetof(struct shm_seg_hdr, sq) == 32, "sq descriptor offset is ABI");
_Static_assert(offsetof(struct shm_seg_hdr, cq) == 72, "cq descriptor offset is ABI");
_Static_assert(offsetof(struct shm_seg_hdr, memory_node) == 112, "memory node offset is ABI");
_Static_assert(offsetof(struct shm_seg_hdr, live) == 4 * SHM_CACHELINE, "liveness line");
_Static_assert(sizeof(struct shm_seg_hdr) == 5 * SHM_CACHELINE, "segment header is ABI");

#endif
