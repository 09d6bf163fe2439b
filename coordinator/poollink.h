/* A shard's link to one pool: a ZeroMQ DEALER (CURVE when configured) with a routing id
 * that survives TCP reconnects, hello and heartbeat messages, and the liveness clock. The
 * router decides what a pool's messages mean; this module only moves them. */
#ifndef ROLLOUT_COORDINATOR_POOLLINK_H
#define ROLLOUT_COORDINATOR_POOLLINK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct poollink {
	const struct rd_pool_cfg *cfg;
	char endpoint[256];
	void *sock;
	int fd; /* ZMQ_FD of sock, -1 when none */
	uint64_t last_rx, last_tx;
	/* A big message sent (a put of tens of MiB) holds up everything behind it on the
	 * link, heartbeat answers included: the pool's silence is counted from when it would
	 * have arrived at LINK_SLOW_BYTES_PER_S, not from when it was sent. */
	uint64_t busy_until;
	uint64_t last_hb;    /* heartbeats go out on their own clock, busy or not: the pool's
			      * answer carries its boot id, so a restart is seen within one */
	uint32_t generation; /* bumped at every reset: a new routing id is a new peer */
	uint64_t hb_seq;
};

/* Who we are to the pools: the routing id is identity/shard/epoch/generation. */
/* When a pool that has not answered since is taken for down: last heard from, or the end
 * of a big message's transfer, whichever is later. */
static inline uint64_t poollink_heard(const struct poollink *p)
{
	return p->last_rx > p->busy_until ? p->last_rx : p->busy_until;
}

struct link_self {
	const struct rd_cfg *cfg;
	int shard;
	uint64_t epoch;
};

/* Expands the configured pools (endpoints, and DNS names into one link per address).
 * *out is calloc'ed; entries whose name does not resolve are logged, left out and counted
 * in *unresolved (may be NULL). Blocks on the resolver: never call it on a shard. */
int poollink_resolve(const struct rd_cfg *c, struct poollink **out, int *n, int *unresolved);

/* (Re)creates the socket and connects; a fresh socket, so nothing queued for an old
 * connection is delivered late. Sends the hello. 0 or a negative code. */
int poollink_connect(struct poollink *p, void *zctx, const struct link_self *self, uint64_t now);
void poollink_close(struct poollink *p);

/* 0 or -EAGAIN (not connected, or the send queue is full). */
int poollink_send(struct poollink *p, const void *buf, size_t len, uint64_t now);
int poollink_hello(struct poollink *p, const struct link_self *self, uint64_t now);
int poollink_heartbeat(struct poollink *p, uint64_t now);

/* Receives one message into an 8-byte aligned copy (*buf, freed by the caller).
 * 0, -EAGAIN (nothing more now), -EBADMSG (multi-part or empty: dropped), -ENOMEM. */
int poollink_recv(struct poollink *p, uint8_t **buf, size_t *len, uint64_t now);

#endif
