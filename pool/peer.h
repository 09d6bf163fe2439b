/* Coordinator peers of rollout-pool: the table of routing ids, and delivery of answers.
 * An answer is kept (pinned in the answer cache) until the ROUTER takes it; one it cannot
 * take now (peer unreachable: EHOSTUNREACH, or EAGAIN) waits in the peer's outbox and is
 * sent again when the peer is heard from or at the next tick. */
#ifndef ROLLOUT_POOL_PEER_H
#define ROLLOUT_POOL_PEER_H

#include "pool_int.h"

/* The peer of a routing id, created on first sight; NULL when rid is too long or memory
 * is short. */
struct peer *peer_get(struct pool *p, const void *rid, size_t rid_len, uint64_t now);
/* Sends one message to the peer: 0 or -errno (EHOSTUNREACH, EAGAIN, ...). For messages
 * that are regenerated anyway (hello, heartbeat, capacity). */
int peer_send(struct pool *p, struct peer *peer, const void *buf, size_t len);
/* The answer to one of the peer's dispatches: stored in the cache (which must hold the
 * dispatch's entry, see acache_begin) and delivered now or later, never dropped while the
 * peer keeps its lease. */
void peer_answer(struct pool *p, struct peer *peer, uint64_t dispatch, const void *bytes, size_t len);
/* Sends what waits in the outbox, oldest first, until the ROUTER refuses one. */
void peer_flush(struct pool *p, struct peer *peer, uint64_t now);
/* The peer's lease expired: undelivered answers are given up (counted). */
void peer_forget_outbox(struct pool *p, struct peer *peer, uint64_t now);
/* Frees peers silent past their lease that own nothing. */
void peer_prune(struct pool *p, uint64_t now);
/* Answer-cache release callback (arg is the pool). */
void peer_release(void *arg, uint64_t peer_id);
void peer_free_all(struct pool *p);

#endif
