/* Coordinator peers and answer delivery (see peer.h). The table is a list: it is bounded
 * by peer_prune to the coordinators heard from within a lease (plus those with answers
 * still cached), a handful in practice. */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "util.h"

struct peer *peer_get(struct pool *p, const void *rid, size_t rid_len, uint64_t now)
{
	for (struct peer *q = p->peers; q; q = q->next)
		if (q->rid_len == rid_len && memcmp(q->rid, rid, rid_len) == 0)
			return q;
	if (rid_len > sizeof(((struct peer *)0)->rid))
		return NULL;
	struct peer *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->id = ++p->next_peer_id;
	memcpy(q->rid, rid, rid_len);
	q->rid_len = rid_len;
	q->lease_ms = p->cfg->lease_ms;
	q->last_seen = now;
	q->next = p->peers;
	p->peers = q;
	p->npeers++;
	return q;
}

int peer_send(struct pool *p, struct peer *peer, const void *buf, size_t len)
{
	/* ROUTER_MANDATORY: an unreachable routing id fails here, before anything is queued. */
	if (zmq_send(p->router, peer->rid, peer->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	if (zmq_send(p->router, buf, len, ZMQ_DONTWAIT) < 0)
		return -errno;
	return 0;
}

static int outbox_push(struct peer *peer, uint64_t dispatch)
{
	if (peer->nout == peer->outcap) {
		size_t cap = peer->outcap ? peer->outcap * 2 : 16;
		uint64_t *o = realloc(peer->outbox, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		peer->outbox = o;
		peer->outcap = cap;
	}
	peer->outbox[peer->nout++] = dispatch;
	return 0;
}

void peer_answer(struct pool *p, struct peer *peer, uint64_t dispatch, const void *bytes, size_t len)
{
	uint64_t now = rollout__now_ns();
	struct acache_entry *e = acache_find(&p->cache, peer->id, dispatch);
	if (!e || acache_finish(&p->cache, e, bytes, len, true, now)) {
		/* Not cached (out of memory at arrival or now): one attempt, nothing to retry from. */
		if (peer_send(p, peer, bytes, len))
			pool_metrics_answer_dropped(p->m);
		return;
	}
	/* Behind older answers, or refused now: the outbox keeps the order and retries. */
	if (peer->nout == 0 && peer_send(p, peer, bytes, len) == 0) {
		acache_unpin(&p->cache, e, now);
		return;
	}
	pool_metrics_send_deferred(p->m);
	if (outbox_push(peer, dispatch)) {
		acache_unpin(&p->cache, e, now);
		pool_metrics_answer_dropped(p->m);
	}
}

void peer_flush(struct pool *p, struct peer *peer, uint64_t now)
{
	size_t i = 0;
	for (; i < peer->nout; i++) {
		struct acache_entry *e = acache_find(&p->cache, peer->id, peer->outbox[i]);
		if (!e || !e->bytes)
			continue;
		if (peer_send(p, peer, e->bytes, e->len))
			break;
		acache_unpin(&p->cache, e, now);
	}
	memmove(peer->outbox, peer->outbox + i, (peer->nout - i) * sizeof(*peer->outbox));
	peer->nout -= i;
}

void peer_forget_outbox(struct pool *p, struct peer *peer, uint64_t now)
{
	for (size_t i = 0; i < peer->nout; i++) {
		struct acache_entry *e = acache_find(&p->cache, peer->id, peer->outbox[i]);
		if (e)
			acache_unpin(&p->cache, e, now);
		pool_metrics_answer_dropped(p->m);
	}
	peer->nout = 0;
}

void peer_release(void *arg, uint64_t peer_id)
{
	struct pool *p = arg;
	for (struct peer *q = p->peers; q; q = q->next)
		if (q->id == peer_id) {
			q->cached--;
			return;
		}
}

void peer_prune(struct pool *p, uint64_t now)
{
	for (struct peer **pp = &p->peers; *pp;) {
		struct peer *q = *pp;
		if (q->boxes || q->jobs || q->cached || q->nout ||
		    now - q->last_seen < (uint64_t)q->lease_ms * 1000000ull) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		free(q->outbox);
		free(q);
		p->npeers--;
	}
}

void peer_free_all(struct pool *p)
{
	for (struct peer *q = p->peers, *n; q; q = n) {
		n = q->next;
		free(q->outbox);
		free(q);
	}
	p->peers = NULL;
	p->npeers = 0;
}
