/* The router's internals, shared by its two files: router_tables.c (the tables: dispatches,
 * sessions, the open queue, orphaned sandboxes; and the sends that fill them) and router.c
 * (the decisions). Nothing outside the router includes this. */
#ifndef ROLLOUT_COORDINATOR_ROUTER_INT_H
#define ROLLOUT_COORDINATOR_ROUTER_INT_H

#include <stddef.h>

#include "rollout_wire.h"
#include "router.h"

#define NB       16384 /* hash buckets (power of two) */
#define BUILD_SZ 4096  /* local completions, closes and cancels are small */

struct dlink {
	struct dlink *prev, *next;
};

struct dispatch {
	struct dlink all;
	struct dispatch *hnext;
	uint64_t id;
	struct rt_client *c; /* NULL: nobody waits any more */
	uint64_t request_id;
	int kind;
	int pool;
	uint64_t deadline, submitted;
	uint64_t sandbox; /* the session a Close ends */
};

struct session {
	struct dlink all;
	struct session *hnext;
	uint64_t sandbox;
	int pool;
	struct rt_client *c;
	bool closing; /* its Close is in flight: later steps get NOT_FOUND */
	/* The latest checkpoint the pool reported for it (Completion.checkpoint; malloc'd, NULL:
	 * none) and the last request whose effects it holds. Given to the trainer on every
	 * SANDBOX_LOST of the sandbox so the task continues from it elsewhere. */
	char *checkpoint;
	uint64_t checkpoint_rid;
	/* Its pool lost it, and it had a checkpoint: kept (not counted as a session) only so
	 * the trainer's next step on it learns the checkpoint instead of NOT_FOUND. Removed by
	 * a Close, the trainer leaving, or a new sandbox of the same id. */
	bool lost;
};

/* The longest checkpoint id taken from a pool; a longer one is refused (a pool's ids are
 * short, and a local completion must fit BUILD_SZ with its message). */
#define ROUTER_MAX_CHECKPOINT 1024

struct waiting {
	struct waiting *next;
	struct rt_client *c;
	uint64_t request_id, deadline, submitted;
	char profile[64];
	size_t len;
	uint8_t msg[];
};

struct orphan { /* a sandbox nobody owns: closed when its pool can take the Close */
	struct orphan *next;
	uint64_t sandbox;
	int pool;
};

struct router {
	struct router_cfg cfg;
	const struct router_ops *ops;
	void *ctx;
	struct rt_pool *pools;
	struct dispatch *disp[NB];
	struct session *sess[NB];
	struct dlink disp_all, sess_all;
	struct waiting *whead, *wtail;
	struct orphan *orphans;
	uint32_t ndisp, nsess, nwait, nlost;
	uint64_t next_dispatch;
	uint8_t build[BUILD_SZ] __attribute__((aligned(8)));
};

#define CONTAINER(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

/* Completes a request rolloutd answers itself (never dispatched, or its pool is gone). */
void rollout__rt_complete_local(struct router *r, struct rt_client *c, uint64_t rid, int kind, int status,
				bool infra, const char *msg, uint64_t submitted, uint64_t now);
/* Completes a request SANDBOX_LOST (infra_failed) with x's checkpoint, if x has one (x may
 * be NULL: an open, or a sandbox rolloutd no longer knows). */
void rollout__rt_complete_lost(struct router *r, struct rt_client *c, uint64_t rid, int kind, const char *msg,
			       const struct session *x, uint64_t submitted, uint64_t now);
/* A pool's SANDBOX_LOST answer (buf, len: verified) for x, which carries no checkpoint,
 * rebuilt with x's: the size of the new message in r->build, or 0 to send buf as it is
 * (x has none, the answer has a result, or it does not fit). */
size_t rollout__rt_add_checkpoint(struct router *r, const uint8_t *buf, const struct session *x);
struct dispatch *rollout__rt_disp_find(struct router *r, uint64_t id);
/* Unhooks a dispatch and gives its pool credit back; the caller frees it. */
void rollout__rt_disp_unlink(struct router *r, struct dispatch *d);
struct session *rollout__rt_sess_find(struct router *r, uint64_t sandbox);
int rollout__rt_sess_add(struct router *r, uint64_t sandbox, int pool, struct rt_client *c);
void rollout__rt_sess_remove(struct router *r, struct session *x);
/* Records a checkpoint the pool reported for x, replacing the one before: 0, -EINVAL
 * (empty or over ROUTER_MAX_CHECKPOINT) or -ENOMEM (the old one is kept). */
int rollout__rt_sess_checkpoint(struct router *r, struct session *x, const char *id, uint64_t rid);
/* x's pool lost it: removed, or kept as lost when it has a checkpoint to hand out and its
 * trainer may still ask (it is not closing it). */
void rollout__rt_sess_lost(struct router *r, struct session *x);
/* Sends a request record with a fresh dispatch id set in place and remembers it: 0,
 * -EAGAIN (the pool cannot take it now), -ENOMEM, -EINVAL (no placeholder). */
int rollout__rt_dispatch(struct router *r, struct rt_client *c, int pool, uint8_t *msg, size_t len,
			 uint64_t rid, int kind, uint64_t deadline, uint64_t submitted, uint64_t sandbox);
/* A sandbox nobody owns any more: closed as soon as its pool takes the Close. */
void rollout__rt_orphan_add(struct router *r, int pool, uint64_t sandbox);
void rollout__rt_close_orphans(struct router *r, uint64_t now);

#endif
