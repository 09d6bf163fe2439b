/* rollout-pool's side of the coordinator protocol: CoordinatorHello -> PoolHello,
 * Heartbeat echoes, CapacityUpdate, Request (dedupe through the answer cache, then open /
 * exec / put / get / close), Cancel, and leases: a coordinator silent past its lease loses
 * its sandboxes. Messages come verified from the ROUTER; answers leave through peer.c. */
#ifndef ROLLOUT_POOL_PROTO_H
#define ROLLOUT_POOL_PROTO_H

#include "pool_int.h"

/* One message from routing id rid; buf is 8-aligned and owned by the caller. */
void proto_on_message(struct pool *p, const void *rid, size_t rid_len, const uint8_t *buf, size_t len);
/* The same for a malloc'ed buf the pool may keep (a request's bytes go to its sandbox
 * without another copy): *buf is set to NULL when it was taken; the caller frees it else. */
void proto_take_message(struct pool *p, const void *rid, size_t rid_len, uint8_t **buf, size_t len);
/* Builds and delivers a Completion (c->dispatch_id names the dispatch; counted by status). */
struct rw_completion;
void proto_send(struct pool *p, struct peer *peer, const struct rw_completion *c);
/* Builds and delivers a Completion for a dispatch (counted by status). */
void proto_complete(struct pool *p, struct peer *peer, uint64_t dispatch, uint64_t request_id, int status,
		    bool infra, const char *message, int result_type, uint64_t sandbox);
/* Completes j with status (an OK exec gets an empty ExecResult) and frees it. */
void proto_job_done(struct pool *p, struct job *j, int status, bool infra, const char *message);
void proto_job_free(struct pool *p, struct job *j);
/* proto_job_done with the sandbox's checkpoint (a SANDBOX_LOST answer). */
void proto_job_done_checkpoint(struct pool *p, struct job *j, int status, bool infra, const char *message,
			       const char *checkpoint, uint64_t checkpoint_rid);
/* PoolHello to one peer (hello) or CapacityUpdate to every peer that said hello. */
void proto_send_capacity(struct pool *p, struct peer *only, bool hello);
/* Leases, outboxes, the peer table and the periodic CapacityUpdate. */
void proto_tick(struct pool *p, uint64_t now);
/* SIGTERM: opens still waiting for a sandbox complete SHUTTING_DOWN. */
void proto_drain(struct pool *p);

#endif
