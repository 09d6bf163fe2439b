/* The router: rolloutd's decisions, with no sockets and no threads. Records from trainers
 * and messages from pools go in; what to send to which pool and which completion goes to
 * which trainer come out through the ops a shard provides (tests provide fakes). It owns
 * the shard's tables: dispatches in flight, sessions (sandbox -> pool, owner, latest
 * checkpoint), and opens waiting for capacity. Its one promise: every request it accepts
 * from a trainer gets exactly one completion, whatever the pools do. A sandbox lost with
 * a checkpoint (docs/environments.md) has it on its SANDBOX_LOST completions; rolloutd
 * never re-runs a step itself. */
#ifndef ROLLOUT_COORDINATOR_ROUTER_H
#define ROLLOUT_COORDINATOR_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "completion.h"

#define ROUTER_MAX_PROFILE 32

/* A trainer as the router sees it; embedded in the shard's trainer. */
struct rt_client {
	const char *name;  /* for logs */
	uint32_t inflight; /* its requests dispatched or waiting, not yet completed */
	uint32_t sessions; /* its open sandboxes */
	bool gone;         /* detached: completions for it are dropped */
};

/* A pool link's state as the router keeps it. */
struct rt_pool {
	bool up;
	bool retired; /* its address left the pool's dns: name: no new opens, sessions finish */
	uint64_t boot_id;
	uint32_t credits, inflight;
	struct {
		char name[64];
		uint32_t free, warm, total;
		bool noop; /* no sandboxes behind the counts: not capacity a person would count */
	} prof[ROUTER_MAX_PROFILE];
	int nprof;
};

/* The effects. A shard implements them over its pool links and trainers. */
struct router_ops {
	/* Sends a message to pool i: 0, or -EAGAIN when it cannot take it now. */
	int (*pool_send)(void *ctx, int pool, const void *msg, size_t len);
	/* Pool i was declared down: reconnect it as a new peer (its old leases run out). */
	void (*pool_reset)(void *ctx, int pool);
	/* Writes a completion record (a whole Message) to a trainer's completion ring. */
	void (*complete)(void *ctx, struct rt_client *c, const void *msg, size_t len);
	/* Metrics: a request read, a completion (kind, status, latency), a refusal. */
	void (*on_request)(void *ctx, int kind);
	void (*on_completion)(void *ctx, int kind, int status, uint64_t latency_ns);
	void (*on_refused)(void *ctx, const char *why);
	/* Streamed output (a partial Completion) for a trainer: best effort, may be dropped
	 * when the trainer is behind (its completion holds the whole output). May be NULL. */
	void (*stream)(void *ctx, struct rt_client *c, const void *msg, size_t len);
	/* Metrics: a checkpoint recorded from a pool's answer, or given to a trainer on a
	 * SANDBOX_LOST (enum router_checkpoint_event). May be NULL. */
	void (*on_checkpoint)(void *ctx, int event);
};

enum router_checkpoint_event {
	ROUTER_CHECKPOINT_RECORDED, /* a pool's answer carried a checkpoint for a sandbox */
	ROUTER_CHECKPOINT_GIVEN,    /* rolloutd put the checkpoint on a SANDBOX_LOST completion */
};

struct router_cfg {
	int shard; /* high byte of every dispatch id */
	int npools;
	uint32_t max_queue; /* opens waiting for capacity at most */
	bool (*stopping)(void *ctx);
};

struct router;

int router_create(struct router **out, const struct router_cfg *cfg, const struct router_ops *ops, void *ctx);
/* Frees the tables; requests still in it get no completion (the daemon is exiting). */
void router_destroy(struct router *r);

enum router_verdict {
	ROUTER_TAKEN, /* the record was consumed (dispatched, queued or completed) */
	ROUTER_WAIT,  /* leave it in the ring and offer it again later (backpressure) */
	ROUTER_PIECE, /* a verified Piece of a bigger request: the caller joins the pieces and
		       * submits the whole record */
};

/* A record copied out of a trainer's submission ring (writable: the dispatch id is set in
 * place). Verifies it; a record that cannot be read still completes (BAD_REQUEST). */
enum router_verdict router_submit(struct router *r, struct rt_client *c, uint8_t *rec, size_t len,
				  uint64_t now);

/* A message from pool i (copied, 8-byte aligned, not yet verified). */
void router_pool_message(struct router *r, int pool, uint8_t *buf, size_t len, uint64_t now);

/* Pool i stopped answering (or restarted): its requests complete SANDBOX_LOST once (with
 * their sandbox's checkpoint), its sessions go (those with a checkpoint stay as lost, to
 * answer the trainer's next step on them with it), and ops->pool_reset reconnects it. */
void router_pool_down(struct router *r, int pool, const char *why);

/* A trainer left: its sandboxes are closed at their pools, its waiting opens dropped, and
 * answers still in flight for it go nowhere. c may be freed after this returns. */
void router_client_gone(struct router *r, struct rt_client *c);

/* Deadlines (TIMEOUT and a Cancel to the pool) and the open queue. Call often. */
void router_tick(struct router *r, uint64_t now);
/* Dispatches waiting opens that now have capacity; true when some still wait. */
bool router_serve_waiting(struct router *r, uint64_t now);

struct rt_pool *router_pool(struct router *r, int i);
/* A pool link added while running (a dns: name gained an address): its index, which is
 * the next one, or -ENOMEM. */
int router_add_pool(struct router *r);
/* Whether new opens may go to pool i (its address left or came back to its dns: name). */
void router_retire_pool(struct router *r, int i, bool retired);

struct router_stats {
	uint32_t dispatches, sessions, waiting;
	uint32_t lost; /* sessions kept only to hand out their checkpoint */
};
void router_stats(const struct router *r, struct router_stats *s);

#endif
