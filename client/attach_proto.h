/* The attach protocol between librollout (trainer side) and rolloutd: fixed-size
 * messages on a unix SOCK_SEQPACKET socket. Both sides include this header; it is an
 * ABI like shm/ring_abi.h: fields are only appended, magic and version are checked.
 *
 *   trainer                               rolloutd
 *   connect(attach_socket) ─────────────▶ accept; SO_PEERCRED read
 *   rollout_attach_req ─────────────────▶ pick the shard of req.gpu, create the segment
 *                       ◀──────────────── rollout_attach_resp + SCM_RIGHTS fds
 *                                         (fds[0] = segment memfd, then the wake-up fds
 *                                          the shm module defines, in resp.fd_roles order)
 *   (socket stays open: EOF on either side is the other side's death notice)
 *   rollout_detach_req (optional) ──────▶ close the trainer's sandboxes, then EOF
 */
#ifndef ROLLOUT_ATTACH_PROTO_H
#define ROLLOUT_ATTACH_PROTO_H

#include <assert.h>
#include <stdint.h>

#define ROLLOUT_ATTACH_MAGIC   0x524c4154u /* "RLAT" */
#define ROLLOUT_ATTACH_VERSION 1u
#define ROLLOUT_ATTACH_MAX_FDS 4u

enum rollout_attach_type {
	ROLLOUT_ATTACH_REQ = 1,
	ROLLOUT_ATTACH_RESP = 2,
	ROLLOUT_DETACH_REQ = 3,
};

/* Roles of the fds sent with rollout_attach_resp, in order. */
enum rollout_attach_fd_role {
	ROLLOUT_FD_NONE = 0,
	ROLLOUT_FD_SEGMENT = 1,      /* sealed memfd holding both rings */
	ROLLOUT_FD_SQ_WAKE = 2,      /* eventfd: trainer wakes rolloutd after submitting */
	ROLLOUT_FD_CQ_WAKE = 3,      /* eventfd: rolloutd wakes the trainer after completing */
	ROLLOUT_FD_DAEMON_PIDFD = 4, /* reserved: liveness is socket EOF */
};

struct rollout_attach_req {
	uint32_t magic;    /* ROLLOUT_ATTACH_MAGIC */
	uint16_t version;  /* ROLLOUT_ATTACH_VERSION */
	uint16_t type;     /* ROLLOUT_ATTACH_REQ */
	int32_t gpu;       /* GPU index this trainer drives; -1: any (shard 0) */
	uint32_t pid;      /* informational; rolloutd trusts SO_PEERCRED, not this */
	uint32_t sq_bytes; /* requested submission ring bytes; 0: rolloutd's default */
	uint32_t cq_bytes; /* requested completion ring bytes; 0: default */
	uint32_t flags;    /* none defined; must be 0 */
	uint32_t reserved0;
	char name[32]; /* trainer label for logs and metrics, NUL-terminated */
	uint64_t reserved[4];
};

struct rollout_attach_resp {
	uint32_t magic;
	uint16_t version;
	uint16_t type;          /* ROLLOUT_ATTACH_RESP */
	int32_t status;         /* 0, or a negative rollout error code (then no fds) */
	uint32_t shard;         /* shard index serving this trainer */
	uint64_t epoch;         /* rolloutd start epoch; also stored in the segment header */
	uint64_t client_id;     /* unique per attach within this epoch */
	uint32_t segment_bytes; /* size of the memfd; the receiver checks it with fstat */
	uint32_t nfds;          /* fds carried with this message */
	uint8_t fd_roles[ROLLOUT_ATTACH_MAX_FDS]; /* enum rollout_attach_fd_role per fd */
	int32_t memory_node;                      /* NUMA node the segment is bound to, -1 if none */
	uint32_t reserved0;
	char message[64]; /* reason when status != 0 */
	uint64_t reserved[4];
};

struct rollout_detach_req {
	uint32_t magic;
	uint16_t version;
	uint16_t type; /* ROLLOUT_DETACH_REQ */
	uint64_t reserved[2];
};

_Static_assert(sizeof(struct rollout_attach_req) == 96, "attach req is ABI");
_Static_assert(sizeof(struct rollout_attach_resp) == 152, "attach resp is ABI");
_Static_assert(sizeof(struct rollout_detach_req) == 24, "detach req is ABI");

#endif
