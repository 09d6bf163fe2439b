/* A shard (see shard.h): its thread, its loop, and the router's effects over its pool links
 * and trainers. The loop's idle hook does the work of every turn: drain the pools, serve
 * waiting opens, read each trainer's ring (a budget each, for fairness) and flush its
 * completions. The timer sends heartbeats, notices silent pools and runs the router's
 * deadlines. */
#include "shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "metrics.h"
#include "rollout/error.h"
#include "trainer.h"
#include "util.h"

#define TICK_MS     20
#define BUDGET      256  /* records read from one trainer per turn: fairness between trainers */
#define POOL_BUDGET 4096 /* messages taken from one pool per turn */

/* ---- the router's effects ---- */

static int op_pool_send(void *ctx, int pool, const void *msg, size_t len)
{
	struct shard *s = ctx;
	return poollink_send(&s->links[pool], msg, len, rollout__now_ns());
}

static void pool_watch(struct shard *s, struct poollink *p)
{
	if (p->fd >= 0 && loop_add(s->loop, p->fd, EPOLLIN, NULL, NULL) == 0)
		return;
	/* Not watched: the timer still drains it every tick. */
}

static void op_pool_reset(void *ctx, int pool)
{
	struct shard *s = ctx;
	struct poollink *p = &s->links[pool];
	if (p->fd >= 0)
		loop_del(s->loop, p->fd);
	p->generation++;
	poollink_connect(p, s->zctx, &s->self, rollout__now_ns());
	pool_watch(s, p);
	rd_metrics_pool(s->m, s->idx, pool, false, 0, 0);
}

static void op_complete(void *ctx, struct rt_client *c, const void *msg, size_t len)
{
	struct shard *s = ctx;
	if (trainer_complete(trainer_of(c), msg, len) == 1)
		rd_metrics_backlog(s->m, 1);
}

static void op_stream(void *ctx, struct rt_client *c, const void *msg, size_t len)
{
	rd_metrics_stream(((struct shard *)ctx)->m, trainer_stream(trainer_of(c), msg, len));
}

static void op_on_request(void *ctx, int kind)
{
	rd_metrics_request(((struct shard *)ctx)->m, kind);
}

static void op_on_completion(void *ctx, int kind, int status, uint64_t ns)
{
	rd_metrics_completion(((struct shard *)ctx)->m, kind, status, ns);
}

static void op_on_refused(void *ctx, const char *why)
{
	struct shard *s = ctx;
	rd_metrics_refused(s->m);
	RLOG(RLOG_DEBUG, "refused", "shard=%d why=\"%s\"", s->idx, why);
}

static void op_on_checkpoint(void *ctx, int event)
{
	rd_metrics_checkpoint(((struct shard *)ctx)->m, event == ROUTER_CHECKPOINT_GIVEN);
}

static bool op_stopping(void *ctx)
{
	return atomic_load(((struct shard *)ctx)->stop) != 0;
}

static const struct router_ops shard_ops = {
	.pool_send = op_pool_send,
	.pool_reset = op_pool_reset,
	.complete = op_complete,
	.stream = op_stream,
	.on_request = op_on_request,
	.on_completion = op_on_completion,
	.on_refused = op_on_refused,
	.on_checkpoint = op_on_checkpoint,
};

/* ---- trainers ---- */

static void on_sq(void *arg, uint32_t events)
{
	(void)events;
	shm_reader_disarm(&((struct trainer *)arg)->r);
}

static void on_sock(void *arg, uint32_t events)
{
	(void)events;
	trainer_on_socket(arg);
}

static int find_link(const struct poollink *v, int n, const char *endpoint)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].endpoint, endpoint))
			return i;
	return -1;
}

/* Applies a DNS refresh: new addresses become links, links of a dns: entry whose address
 * is gone are retired (no new opens) until it comes back. */
static void apply_links(struct shard *s, struct poollink *v, int n)
{
	for (int i = 0; i < n; i++) {
		if (find_link(s->links, s->nlinks, v[i].endpoint) >= 0)
			continue;
		struct poollink *nl = realloc(s->links, (size_t)(s->nlinks + 1) * sizeof(*nl));
		if (!nl)
			break;
		s->links = nl;
		int idx = router_add_pool(s->router);
		if (idx != s->nlinks)
			break;
		s->links[s->nlinks++] = v[i];
		RLOG(RLOG_INFO, "pool added", "shard=%d pool=%d endpoint=%s", s->idx, idx, v[i].endpoint);
		poollink_connect(&s->links[idx], s->zctx, &s->self, rollout__now_ns());
		pool_watch(s, &s->links[idx]);
	}
	for (int i = 0; i < s->nlinks; i++) {
		if (!s->links[i].cfg->dns)
			continue;
		bool gone = find_link(v, n, s->links[i].endpoint) < 0;
		struct rt_pool *rp = router_pool(s->router, i);
		if (rp->retired != gone)
			RLOG(RLOG_INFO, gone ? "pool retired" : "pool back in its name",
			     "shard=%d pool=%d endpoint=%s", s->idx, i, s->links[i].endpoint);
		router_retire_pool(s->router, i, gone);
	}
}

int shard_update_links(struct shard *s, const struct poollink *v, int n)
{
	struct poollink *copy = malloc((size_t)(n > 0 ? n : 1) * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, (size_t)n * sizeof(*copy));
	pthread_mutex_lock(&s->mu);
	free(s->resolved);
	s->resolved = copy;
	s->nresolved = n;
	pthread_mutex_unlock(&s->mu);
	uint64_t one = 1;
	return write(s->handoff, &one, sizeof(one)) < 0 ? -errno : 0;
}

static void adopt(void *arg, uint32_t events)
{
	struct shard *s = arg;
	uint64_t v;
	(void)events;
	if (read(s->handoff, &v, sizeof(v)) < 0 && errno != EAGAIN)
		RLOG(RLOG_WARN, "handoff read failed", "shard=%d err=%d", s->idx, errno);
	pthread_mutex_lock(&s->mu);
	struct trainer *list = s->incoming;
	s->incoming = NULL;
	struct poollink *resolved = s->resolved;
	int nresolved = s->nresolved;
	s->resolved = NULL;
	pthread_mutex_unlock(&s->mu);
	if (resolved) {
		apply_links(s, resolved, nresolved);
		free(resolved);
	}
	while (list) {
		struct trainer *t = list;
		list = t->next;
		if (loop_add(s->loop, t->sq_wake, EPOLLIN, on_sq, t) ||
		    loop_add(s->loop, t->sock, EPOLLIN | EPOLLRDHUP, on_sock, t))
			t->dead = true; /* freed at the next turn; its socket closes */
		t->next = s->trainers;
		s->trainers = t;
		rd_metrics_trainers(s->m, 1);
	}
}

static void trainer_remove(struct shard *s, struct trainer *t)
{
	loop_del(s->loop, t->sq_wake);
	loop_del(s->loop, t->sock);
	router_client_gone(s->router, &t->rc);
	RLOG(RLOG_INFO, "trainer detached", "shard=%d trainer=%s pid=%d", s->idx, t->name, (int)t->pid);
	uint32_t dropped = trainer_destroy(t);
	if (dropped)
		rd_metrics_backlog(s->m, -(int)dropped);
	rd_metrics_trainers(s->m, -1);
}

/* Reads up to BUDGET records; true when the budget ran out (more may wait). */
static bool trainer_read(struct shard *s, struct trainer *t, uint64_t now)
{
	t->blocked = false;
	for (int n = 0; n < BUDGET; n++) {
		if (t->join.whole) {
			/* A request that came in pieces: the router takes it like any record. */
			if (router_submit(s->router, &t->rc, t->join.buf, t->join.total, now) ==
			    ROUTER_WAIT) {
				t->blocked = true;
				return false;
			}
			trainer_piece_taken(t);
			continue;
		}
		const void *d;
		uint32_t len;
		int rc = shm_reader_peek(&t->r, &d, &len);
		if (rc == -EAGAIN)
			return false;
		if (rc) {
			RLOG(RLOG_WARN, "trainer ring refused", "trainer=%s err=%s", t->name,
			     rollout_err_name(rc));
			rd_metrics_refused(s->m);
			t->dead = true;
			return false;
		}
		/* d is the reader's private copy: the router may set the dispatch id in it. */
		enum router_verdict v = router_submit(s->router, &t->rc, (uint8_t *)d, len, now);
		if (v == ROUTER_WAIT) {
			t->blocked = true;
			return false;
		}
		if (v == ROUTER_PIECE && trainer_piece(t, d) < 0) {
			shm_reader_release(&t->r);
			rd_metrics_refused(s->m);
			return false;
		}
		shm_reader_release(&t->r);
		if (t->dead)
			return false;
	}
	return true;
}

/* ---- the loop ---- */

static bool drain_pools(struct shard *s, uint64_t now)
{
	bool more = false;
	for (int i = 0; i < s->nlinks; i++) {
		struct poollink *p = &s->links[i];
		int n = 0;
		for (; n < POOL_BUDGET; n++) {
			uint8_t *buf;
			size_t len;
			int rc = poollink_recv(p, &buf, &len, now);
			if (rc == -EAGAIN)
				break;
			if (rc) {
				rd_metrics_refused(s->m);
				continue;
			}
			router_pool_message(s->router, i, buf, len, now);
			free(buf);
		}
		int ev = 0;
		size_t el = sizeof(ev);
		/* A send may have consumed the fd's edge: ask the socket itself. */
		if (n == POOL_BUDGET ||
		    (p->sock && zmq_getsockopt(p->sock, ZMQ_EVENTS, &ev, &el) == 0 && (ev & ZMQ_POLLIN)))
			more = true;
	}
	return more;
}

static bool turn(void *arg)
{
	struct shard *s = arg;
	uint64_t now = rollout__now_ns();
	bool more = drain_pools(s, now);
	router_serve_waiting(s->router, now);
	s->some_blocked = false;
	for (struct trainer **pp = &s->trainers; *pp;) {
		struct trainer *t = *pp;
		if (!t->dead && shm_seg_state(&t->seg) == SHM_STATE_CLOSING)
			t->dead = true;
		if (t->dead) {
			*pp = t->next;
			trainer_remove(s, t);
			continue;
		}
		if (!trainer_backlogged(t) && trainer_read(s, t, now))
			more = true;
		int moved = trainer_flush(t);
		if (moved)
			rd_metrics_backlog(s->m, -moved);
		if (t->blocked || t->bhead)
			s->some_blocked = true;
		else if (shm_reader_arm(&t->r) == -EAGAIN)
			more = true;
		pp = &t->next;
	}
	return more;
}

/* Time since t; 0 when t was stamped after now was read (another path stamps it fresh). */
static uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

static void tick(void *arg, uint64_t now)
{
	struct shard *s = arg;
	const struct rd_cfg *c = s->cfg;
	for (int i = 0; i < s->nlinks; i++) {
		struct poollink *p = &s->links[i];
		struct rt_pool *rp = router_pool(s->router, i);
		if (since(now, poollink_heard(p)) > ROLLOUT_MS(c->pool_timeout_ms)) {
			if (rp->up) {
				router_pool_down(s->router, i, "no answer within pool_timeout_ms");
			} else if (since(now, p->last_tx) > ROLLOUT_MS(c->heartbeat_ms)) {
				/* Never came up: a fresh socket (a CURVE handshake may have failed). */
				if (p->fd >= 0)
					loop_del(s->loop, p->fd);
				poollink_connect(p, s->zctx, &s->self, now);
				pool_watch(s, p);
			}
			continue;
		}
		if (rp->up && since(now, p->last_hb) > ROLLOUT_MS(c->heartbeat_ms))
			poollink_heartbeat(p, now);
		else if (!rp->up && since(now, p->last_tx) > ROLLOUT_MS(c->heartbeat_ms))
			poollink_hello(p, &s->self, now);
	}
	router_tick(s->router, now);
	struct router_stats st;
	router_stats(s->router, &st);
	rd_metrics_gauges(s->m, s->idx, st.dispatches, st.sessions, st.waiting);
	uint64_t pending = 0;
	for (struct trainer *t = s->trainers; t; t = t->next)
		pending += shm_reader_pending(&t->r);
	rd_metrics_ring(s->m, s->idx, pending);
	for (int i = 0; i < s->nlinks; i++) {
		struct rt_pool *rp = router_pool(s->router, i);
		uint32_t free_sb = 0;
		for (int k = 0; k < rp->nprof; k++)
			free_sb += rp->prof[k].noop ? 0 : rp->prof[k].free;
		rd_metrics_pool(s->m, s->idx, i, rp->up, rp->credits, free_sb);
	}
}

static void pin(struct shard *s)
{
	if (!s->ncpus || !s->topo)
		return;
	hwloc_bitmap_t got = hwloc_bitmap_alloc();
	int rc = got ? pin_bind_thread(s->topo, s->cpus, s->ncpus, got) : -ENOMEM;
	char *list = NULL;
	if (got)
		hwloc_bitmap_list_asprintf(&list, got);
	if (rc)
		RLOG(RLOG_WARN, "shard not pinned", "shard=%d err=%s", s->idx, rollout_err_name(rc));
	else
		RLOG(RLOG_INFO, "shard pinned", "shard=%d cpus=%s memory_node=%d", s->idx, list ? list : "?",
		     s->memory_node);
	free(list);
	if (got)
		hwloc_bitmap_free(got);
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	char name[16];
	snprintf(name, sizeof(name), "rolloutd-s%d", s->idx);
	pthread_setname_np(pthread_self(), name);
	pin(s);
	uint64_t now = rollout__now_ns();
	for (int i = 0; i < s->nlinks; i++) {
		poollink_connect(&s->links[i], s->zctx, &s->self, now);
		pool_watch(s, &s->links[i]);
	}
	uint64_t drain_until = 0;
	for (;;) {
		if (atomic_load(s->stop)) {
			now = rollout__now_ns();
			if (!drain_until)
				drain_until = now + ROLLOUT_MS(s->cfg->drain_ms);
			struct router_stats st;
			router_stats(s->router, &st);
			if (st.dispatches == 0 || now > drain_until)
				break;
		}
		int rc = loop_run_once(s->loop, s->some_blocked ? 1 : TICK_MS);
		if (rc < 0) {
			RLOG(RLOG_ERROR, "shard loop failed", "shard=%d err=%s", s->idx,
			     rollout_err_name(rc));
			break;
		}
	}
	/* Last completions out; then each trainer sees its socket close. */
	while (s->trainers) {
		struct trainer *t = s->trainers;
		s->trainers = t->next;
		trainer_flush(t);
		trainer_remove(s, t);
	}
	for (int i = 0; i < s->nlinks; i++)
		poollink_close(&s->links[i]);
	return NULL;
}

int shard_init(struct shard *s, int idx, const struct rd_cfg *cfg, void *zctx, struct rd_metrics *m,
	       uint64_t epoch, char *err, size_t errsz)
{
	s->idx = idx;
	s->cfg = cfg;
	s->zctx = zctx;
	s->m = m;
	s->handoff = -1;
	s->self = (struct link_self){ .cfg = cfg, .shard = idx, .epoch = epoch };
	pthread_mutex_init(&s->mu, NULL);
	int rc = loop_create(&s->loop);
	if (rc)
		return rc;
	s->handoff = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->handoff < 0)
		return -errno;
	if ((rc = loop_add(s->loop, s->handoff, EPOLLIN, adopt, s)) ||
	    (rc = loop_every(s->loop, ROLLOUT_MS(TICK_MS), tick, s)))
		return rc;
	loop_set_idle(s->loop, turn, s);
	if ((rc = poollink_resolve(cfg, &s->links, &s->nlinks, NULL)))
		return rc;
	if (s->nlinks == 0) {
		snprintf(err, errsz, "no pool endpoint resolved");
		return -ENOENT;
	}
	struct router_cfg rc_cfg = {
		.shard = idx, .npools = s->nlinks, .max_queue = cfg->max_queue, .stopping = op_stopping
	};
	return router_create(&s->router, &rc_cfg, &shard_ops, s);
}

int shard_start(struct shard *s, atomic_int *stop)
{
	s->stop = stop;
	int rc = pthread_create(&s->th, NULL, shard_main, s);
	if (rc)
		return -rc;
	s->started = true;
	return 0;
}

void shard_join(struct shard *s)
{
	if (!s->started)
		return;
	pthread_join(s->th, NULL);
	s->started = false;
}

void shard_handoff(struct shard *s, struct trainer *t)
{
	pthread_mutex_lock(&s->mu);
	t->next = s->incoming;
	s->incoming = t;
	pthread_mutex_unlock(&s->mu);
	uint64_t one = 1;
	if (write(s->handoff, &one, sizeof(one)) < 0)
		RLOG(RLOG_WARN, "handoff wake-up failed", "shard=%d err=%d", s->idx, errno);
}

void shard_fini(struct shard *s)
{
	while (s->incoming) {
		struct trainer *t = s->incoming;
		s->incoming = t->next;
		trainer_destroy(t);
	}
	free(s->resolved);
	router_destroy(s->router);
	for (int i = 0; s->links && i < s->nlinks; i++)
		poollink_close(&s->links[i]);
	free(s->links);
	loop_destroy(s->loop);
	if (s->handoff >= 0)
		close(s->handoff);
	pthread_mutex_destroy(&s->mu);
}
