/* rolloutd: attach server and shards. The main thread accepts trainers on the attach socket,
 * creates their segment and hands them to a shard. A shard is one thread owning its
 * trainers' rings, its ZeroMQ links to every pool, its dispatch and session tables: nothing
 * on the data path is shared, so nothing is locked. Every request read from a trainer's ring
 * completes exactly once: with the pool's answer, or TIMEOUT at its deadline, or
 * SANDBOX_LOST when its pool stops answering, or locally (NOT_FOUND, UNAVAILABLE, ...). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "attach_proto.h"
#include "log.h"
#include "metrics.h"
#include "pin.h"
#include "ring.h"
#include "rollout/error.h"
#include "rollout_wire.h"
#include "shard.h"

#define NB          4096
#define TICK_MS     20
#define BUDGET      256 /* records read from one trainer per turn: fairness between trainers */
#define MAX_PROFILE 32

enum ev_type { EV_SQ = 1, EV_SOCK, EV_POOL, EV_HANDOFF };
struct ev {
	enum ev_type type;
	void *obj;
};

struct backlog {
	struct backlog *next;
	size_t len;
	uint8_t data[];
};

struct trainer {
	struct ev ev_sq, ev_sock;
	int sock, sq_wake, cq_wake;
	struct shm_seg seg;
	struct shm_reader r;
	struct shm_writer w;
	char name[32];
	int pid;
	bool dead, blocked;
	uint32_t inflight, sessions;
	struct backlog *bhead, *btail;
	struct trainer *next;
};

struct pool_link {
	struct ev ev;
	const struct rd_pool_cfg *cfg;
	char endpoint[256];
	void *sock;
	bool up;
	uint64_t last_rx, last_tx, boot_id;
	uint32_t credits, inflight;
	uint32_t generation; /* bumped at every pool_down: a new routing id, a new peer */
	struct {
		char name[64];
		uint32_t free, warm, total;
	} prof[MAX_PROFILE];
	int nprof;
};

struct dispatch {
	uint64_t id;
	struct trainer *t; /* NULL: nobody waits (cleanup close) */
	uint64_t request_id;
	int kind;
	struct pool_link *pool;
	uint64_t deadline;
	uint64_t submitted;
	struct dispatch *next;
};

struct session {
	uint64_t sandbox;
	struct pool_link *pool;
	struct trainer *t;
	struct session *next;
};

struct waiting {
	struct trainer *t;
	uint64_t request_id, deadline, submitted;
	char profile[64];
	uint8_t *msg;
	size_t len;
	struct waiting *next;
};

struct shard {
	struct rd *d;
	int idx;
	pthread_t th;
	int epfd, handoff;
	struct ev ev_handoff;
	pthread_mutex_t mu;
	struct trainer *incoming;
	struct trainer *trainers;
	struct pool_link *pools;
	int npools;
	struct dispatch *disp[NB];
	struct session *sess[NB];
	struct waiting *whead, *wtail;
	uint32_t nwaiting, ndispatch, nsessions, ntrainers;
	uint64_t next_dispatch;
	uint8_t *build;
	size_t build_cap;
	bool busy;
	struct rd_metrics *m;
	int cpus[8]; /* where the placement plan puts this shard (PU os indexes) */
	int ncpus;
	int memory_node; /* NUMA node for its trainers' segments, -1: none */
};

struct rd {
	const struct rd_cfg *cfg;
	void *zctx;
	int listen_fd;
	struct shard *shards;
	uint32_t nshards;
	uint64_t epoch;
	volatile int *stop;
	struct rd_metrics *m;
	struct pin_topo topo;
	bool have_topo;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t h64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (size_t)(v % NB);
}

/* ---- completions to trainers ---- */

static void cq_put(struct shard *s, struct trainer *t, const void *msg, size_t len)
{
	if (!t || t->dead)
		return;
	if (!t->bhead) {
		int err;
		void *at = len <= t->w.g.max_record ? shm_writer_reserve(&t->w, (uint32_t)len, &err) : NULL;
		if (at) {
			memcpy(at, msg, len);
			shm_writer_commit(&t->w, (uint32_t)len);
			return;
		}
	}
	/* The trainer is not reading fast enough: hold it here, never drop it. */
	struct backlog *b = malloc(sizeof(*b) + len);
	if (!b)
		return;
	b->next = NULL;
	b->len = len;
	memcpy(b->data, msg, len);
	if (t->btail)
		t->btail->next = b;
	else
		t->bhead = b;
	t->btail = b;
	rd_metrics_backlog(s->m, 1);
}

static void cq_flush(struct shard *s, struct trainer *t)
{
	while (t->bhead) {
		struct backlog *b = t->bhead;
		int err;
		void *at = shm_writer_reserve(&t->w, (uint32_t)b->len, &err);
		if (!at)
			break;
		memcpy(at, b->data, b->len);
		shm_writer_commit(&t->w, (uint32_t)b->len);
		t->bhead = b->next;
		if (!t->bhead)
			t->btail = NULL;
		free(b);
		rd_metrics_backlog(s->m, -1);
	}
	shm_writer_publish(&t->w);
}

static struct fb_builder *builder(struct shard *s, size_t need)
{
	static __thread struct fb_builder b;
	if (s->build_cap < need) {
		free(s->build);
		s->build_cap = need < 65536 ? 65536 : need;
		s->build = aligned_alloc(8, s->build_cap);
	}
	fb_builder_init(&b, s->build, s->build_cap);
	return &b;
}

/* A completion rolloutd makes itself (the request never reached a pool, or its pool is gone). */
static void complete_local(struct shard *s, struct trainer *t, uint64_t request_id, int kind, int status,
			   bool infra, const char *msg, uint64_t submitted)
{
	rd_metrics_completion(s->m, kind, status, submitted ? now_ns() - submitted : 0);
	if (!t || t->dead)
		return;
	struct fb_builder *b = builder(s, 1024);
	fb_ref_t text = msg ? fb_create_string(b, msg) : 0;
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, request_id);
	rw_Completion_add_status(b, (uint16_t)status);
	rw_Completion_add_infra_failed(b, infra);
	rw_Completion_add_message(b, text);
	fb_ref_t c = rw_Completion_end(b);
	rw_Message_start(b);
	rw_Message_add_body(b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n > 0)
		cq_put(s, t, s->build, (size_t)n);
}

/* ---- tables ---- */

static struct dispatch *disp_take(struct shard *s, uint64_t id)
{
	for (struct dispatch **pp = &s->disp[h64(id)]; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct dispatch *d = *pp;
			*pp = d->next;
			s->ndispatch--;
			return d;
		}
	return NULL;
}

static struct session *sess_find(struct shard *s, uint64_t sandbox)
{
	for (struct session *x = s->sess[h64(sandbox)]; x; x = x->next)
		if (x->sandbox == sandbox)
			return x;
	return NULL;
}

static void sess_remove(struct shard *s, uint64_t sandbox)
{
	for (struct session **pp = &s->sess[h64(sandbox)]; *pp; pp = &(*pp)->next)
		if ((*pp)->sandbox == sandbox) {
			struct session *x = *pp;
			*pp = x->next;
			if (x->t)
				x->t->sessions--;
			s->nsessions--;
			free(x);
			return;
		}
}

/* ---- pools ---- */

static int pool_send(struct pool_link *p, const void *buf, size_t len)
{
	if (!p->sock || zmq_send(p->sock, buf, len, ZMQ_DONTWAIT) < 0)
		return -errno;
	p->last_tx = now_ns();
	return 0;
}

static void pool_hello(struct shard *s, struct pool_link *p)
{
	struct fb_builder *b = builder(s, 1024);
	fb_ref_t id = fb_create_string(b, s->d->cfg->identity);
	fb_ref_t ver = fb_create_string(b, "0.1.0");
	rw_CoordinatorHello_start(b);
	rw_CoordinatorHello_add_identity(b, id);
	rw_CoordinatorHello_add_version(b, ver);
	rw_CoordinatorHello_add_schema_version(b, rw_SchemaVersion_Current);
	rw_CoordinatorHello_add_lease_ms(b, s->d->cfg->lease_ms);
	fb_ref_t h = rw_CoordinatorHello_end(b);
	rw_Message_start(b);
	rw_Message_add_body(b, rw_Body_CoordinatorHello, h);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n > 0)
		pool_send(p, s->build, (size_t)n);
}

static void pool_connect(struct shard *s, struct pool_link *p)
{
	if (p->sock) {
		int zfd;
		size_t zl = sizeof(zfd);
		if (zmq_getsockopt(p->sock, ZMQ_FD, &zfd, &zl) == 0)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, zfd, NULL);
		zmq_close(p->sock);
	}
	/* A fresh socket: nothing queued for the old connection is ever delivered late. */
	p->sock = zmq_socket(s->d->zctx, ZMQ_DEALER);
	/* A routing id of our own: when ZeroMQ reconnects this socket after a network blip the
	 * pool sees the same peer (its leases and its dispatch cache carry over). After a
	 * pool_down the generation changes, so the pool treats us as new and lets the old
	 * leases run out. */
	char rid[160];
	int rlen = snprintf(rid, sizeof(rid), "%s/%d/%llx/%u", s->d->cfg->identity, s->idx,
			    (unsigned long long)s->d->epoch, p->generation);
	zmq_setsockopt(p->sock, ZMQ_ROUTING_ID, rid,
		       (size_t)(rlen < (int)sizeof(rid) ? rlen : (int)sizeof(rid) - 1));
	int zero = 0, one = 1, hwm = 1000000;
	zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(p->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(p->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(p->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	int64_t maxmsg = 128ll << 20;
	zmq_setsockopt(p->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	const struct rd_cfg *c = s->d->cfg;
	if (p->cfg->server_key) {
		zmq_setsockopt(p->sock, ZMQ_CURVE_SERVERKEY, p->cfg->server_key, 41);
		zmq_setsockopt(p->sock, ZMQ_CURVE_PUBLICKEY, c->curve_public_key, 41);
		zmq_setsockopt(p->sock, ZMQ_CURVE_SECRETKEY, c->curve_secret_key, 41);
	}
	zmq_connect(p->sock, p->endpoint);
	int zfd;
	size_t zl = sizeof(zfd);
	zmq_getsockopt(p->sock, ZMQ_FD, &zfd, &zl);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &p->ev };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, zfd, &e);
	p->last_rx = now_ns();
	pool_hello(s, p);
}

static void pool_down(struct shard *s, struct pool_link *p, const char *why)
{
	if (p->up)
		RLOG(RLOG_WARN, "pool down", "shard=%d pool=%s reason=\"%s\"", s->idx, p->endpoint, why);
	p->up = false;
	p->credits = 0;
	p->nprof = 0;
	/* Everything dispatched to it completes now, once, as lost; nothing is re-run elsewhere. */
	for (size_t h = 0; h < NB; h++)
		for (struct dispatch **pp = &s->disp[h]; *pp;) {
			struct dispatch *d = *pp;
			if (d->pool != p) {
				pp = &d->next;
				continue;
			}
			*pp = d->next;
			s->ndispatch--;
			if (d->t)
				d->t->inflight--;
			complete_local(s, d->t, d->request_id, d->kind, rw_Status_SANDBOX_LOST, true,
				       "the pool stopped answering", d->submitted);
			free(d);
		}
	p->inflight = 0;
	for (size_t h = 0; h < NB; h++)
		for (struct session *x = s->sess[h], *n; x; x = n) {
			n = x->next;
			if (x->pool == p)
				sess_remove(s, x->sandbox);
		}
	rd_metrics_pool(s->m, s->idx, p - s->pools, false, 0);
	p->generation++;
	pool_connect(s, p);
}

static void on_pool_completion(struct shard *s, struct pool_link *p, const uint8_t *buf, size_t len,
			       const rw_Message_t *m)
{
	struct dispatch *d = disp_take(s, rw_Message_dispatch_id(m));
	if (!d) {
		rd_metrics_refused(s->m); /* unknown or already completed (timed out): dropped */
		return;
	}
	const rw_Completion_t *c = rw_Message_body_as_Completion(m);
	int status = rw_Completion_status(c);
	p->inflight--;
	p->credits++;
	if (d->t)
		d->t->inflight--;
	if (d->kind == rw_Action_Open && status == rw_Status_OK) {
		uint64_t sb = rw_Opened_sandbox(rw_Completion_result_as_Opened(c));
		if (d->t && !d->t->dead) {
			struct session *x = calloc(1, sizeof(*x));
			if (x) {
				x->sandbox = sb;
				x->pool = p;
				x->t = d->t;
				x->next = s->sess[h64(sb)];
				s->sess[h64(sb)] = x;
				d->t->sessions++;
				s->nsessions++;
			}
		}
	} else if (d->kind == rw_Action_Close) {
		/* the sandbox is gone whatever the status says */
	}
	rd_metrics_completion(s->m, d->kind, status, now_ns() - d->submitted);
	cq_put(s, d->t, buf, len);
	free(d);
}

static void apply_capacity(struct pool_link *p, fb_tabvec_t v)
{
	p->nprof = 0;
	for (size_t i = 0; i < fb_tabvec_len(v) && p->nprof < MAX_PROFILE; i++) {
		const rw_ProfileCapacity_t *pc = rw_PoolHello_capacity_at(v, i);
		const char *name = rw_ProfileCapacity_profile(pc);
		if (!name)
			continue;
		snprintf(p->prof[p->nprof].name, sizeof(p->prof[0].name), "%s", name);
		p->prof[p->nprof].free = rw_ProfileCapacity_free(pc);
		p->prof[p->nprof].warm = rw_ProfileCapacity_warm(pc);
		p->prof[p->nprof].total = rw_ProfileCapacity_total(pc);
		p->nprof++;
	}
}

static void on_pool_readable(struct shard *s, struct pool_link *p)
{
	for (;;) {
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, p->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		size_t len = zmq_msg_size(&msg);
		if (zmq_msg_more(&msg) || len == 0) {
			zmq_msg_close(&msg);
			rd_metrics_refused(s->m);
			continue;
		}
		uint8_t *buf = aligned_alloc(8, (len + 7) & ~(size_t)7);
		if (!buf) {
			zmq_msg_close(&msg);
			continue;
		}
		memcpy(buf, zmq_msg_data(&msg), len);
		zmq_msg_close(&msg);
		if (rw_Message_verify(buf, len) != 0) {
			rd_metrics_refused(s->m);
			free(buf);
			continue;
		}
		p->last_rx = now_ns();
		const rw_Message_t *m = rw_Message_root(buf);
		switch (rw_Message_body_type(m)) {
		case rw_Body_PoolHello: {
			const rw_PoolHello_t *h = rw_Message_body_as_PoolHello(m);
			if (p->up && p->boot_id != rw_PoolHello_boot_id(h))
				pool_down(s, p, "pool restarted");
			p->up = true;
			p->boot_id = rw_PoolHello_boot_id(h);
			p->credits = rw_PoolHello_max_inflight(h) > p->inflight
					 ? rw_PoolHello_max_inflight(h) - p->inflight
					 : 0;
			apply_capacity(p, rw_PoolHello_capacity(h));
			RLOG(RLOG_INFO, "pool up", "shard=%d pool=%s identity=\"%s\" credits=%u", s->idx,
			     p->endpoint, rw_PoolHello_identity(h) ? rw_PoolHello_identity(h) : "",
			     p->credits);
			rd_metrics_pool(s->m, s->idx, p - s->pools, true, p->credits);
			break;
		}
		case rw_Body_CapacityUpdate:
			apply_capacity(p, rw_CapacityUpdate_capacity(rw_Message_body_as_CapacityUpdate(m)));
			break;
		case rw_Body_Heartbeat:
			break;
		case rw_Body_Completion:
			on_pool_completion(s, p, buf, len, m);
			break;
		default:
			rd_metrics_refused(s->m);
		}
		free(buf);
	}
}

/* The pool with the most free capacity for the profile, among those up with credits. */
static struct pool_link *pick_pool(struct shard *s, const char *profile, bool *known, bool *any_up)
{
	struct pool_link *best = NULL;
	uint32_t best_free = 0;
	*known = *any_up = false;
	for (int i = 0; i < s->npools; i++) {
		struct pool_link *p = &s->pools[i];
		if (!p->up)
			continue;
		*any_up = true;
		for (int k = 0; k < p->nprof; k++) {
			if (strcmp(p->prof[k].name, profile))
				continue;
			*known = true;
			if (p->credits > 0 && p->prof[k].free > best_free) {
				best = p;
				best_free = p->prof[k].free;
			}
		}
	}
	return best;
}

static void take_profile_slot(struct pool_link *p, const char *profile)
{
	for (int k = 0; k < p->nprof; k++)
		if (!strcmp(p->prof[k].name, profile) && p->prof[k].free)
			p->prof[k].free--;
}

/* Sends a request record (dispatch id patched in place) to a pool and remembers it. */
static int dispatch(struct shard *s, struct trainer *t, struct pool_link *p, uint8_t *msg, size_t len,
		    uint64_t request_id, int kind, uint64_t deadline, uint64_t submitted)
{
	uint64_t id = ((uint64_t)s->idx << 56) | ++s->next_dispatch;
	uint8_t *field = (uint8_t *)fb_field(rw_Message_root(msg), 1);
	if (!field)
		return -EINVAL;
	memcpy(field, &id, 8);
	if (pool_send(p, msg, len))
		return -EAGAIN;
	struct dispatch *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->id = id;
	d->t = t;
	d->request_id = request_id;
	d->kind = kind;
	d->pool = p;
	d->deadline = deadline;
	d->submitted = submitted;
	d->next = s->disp[h64(id)];
	s->disp[h64(id)] = d;
	s->ndispatch++;
	p->inflight++;
	if (p->credits)
		p->credits--;
	if (t)
		t->inflight++;
	return 0;
}

/* Closes a sandbox whose owner is gone; the answer goes nowhere. */
static void close_orphan(struct shard *s, struct pool_link *p, uint64_t sandbox)
{
	struct fb_builder *b = builder(s, 512);
	rw_Close_start(b);
	rw_Close_add_sandbox(b, sandbox);
	fb_ref_t c = rw_Close_end(b);
	rw_Request_start(b);
	rw_Request_add_action(b, rw_Action_Close, c);
	fb_ref_t r = rw_Request_end(b);
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, UINT64_MAX);
	rw_Message_add_body(b, rw_Body_Request, r);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n > 0)
		dispatch(s, NULL, p, s->build, (size_t)n, 0, rw_Action_Close, 0, now_ns());
}

/* ---- trainers ---- */

enum route { ROUTED, WAIT_RING }; /* WAIT_RING: leave the record in the ring, retry later */

static enum route route(struct shard *s, struct trainer *t, uint8_t *msg, size_t len)
{
	uint64_t now = now_ns();
	if (rw_Message_verify(msg, len) != 0) {
		rd_metrics_refused(s->m);
		RLOG(RLOG_WARN, "bad record refused", "trainer=%s len=%zu", t->name, len);
		return ROUTED;
	}
	const rw_Message_t *m = rw_Message_root(msg);
	const rw_Request_t *r = rw_Message_body_as_Request(m);
	if (!r || rw_Message_schema_version(m) > rw_SchemaVersion_Current) {
		rd_metrics_refused(s->m);
		return ROUTED;
	}
	uint64_t rid = rw_Request_request_id(r), deadline = rw_Request_deadline_ns(r);
	int kind = rw_Request_action_type(r);
	rd_metrics_request(s->m, kind);
	if (!rw_Message_has_dispatch_id(m)) {
		complete_local(s, t, rid, kind, rw_Status_BAD_REQUEST, false,
			       "request has no dispatch_id placeholder (build it with librollout)", now);
		return ROUTED;
	}
	if (deadline && deadline <= now) {
		complete_local(s, t, rid, kind, rw_Status_TIMEOUT, false, "deadline passed before dispatch",
			       now);
		return ROUTED;
	}
	if (*s->d->stop) {
		complete_local(s, t, rid, kind, rw_Status_SHUTTING_DOWN, true, "rolloutd is shutting down",
			       now);
		return ROUTED;
	}
	if (kind == rw_Action_Open) {
		const char *profile = rw_Open_profile(rw_Request_action_as_Open(r));
		if (!profile)
			profile = "default";
		bool known, any_up;
		struct pool_link *p = pick_pool(s, profile, &known, &any_up);
		if (!any_up) {
			complete_local(s, t, rid, kind, rw_Status_UNAVAILABLE, true, "no pool is up", now);
			return ROUTED;
		}
		if (!known) {
			complete_local(s, t, rid, kind, rw_Status_UNKNOWN_PROFILE, false,
				       "no pool offers this profile", now);
			return ROUTED;
		}
		if (!p || s->whead) {
			/* Everything full (or others wait already, in order): queue, bounded. */
			if (s->nwaiting >= s->d->cfg->max_queue)
				return WAIT_RING;
			struct waiting *w = calloc(1, sizeof(*w));
			if (!w || !(w->msg = malloc(len))) {
				free(w);
				return WAIT_RING;
			}
			memcpy(w->msg, msg, len);
			w->len = len;
			w->t = t;
			w->request_id = rid;
			w->deadline = deadline;
			w->submitted = now;
			snprintf(w->profile, sizeof(w->profile), "%s", profile);
			if (s->wtail)
				s->wtail->next = w;
			else
				s->whead = w;
			s->wtail = w;
			s->nwaiting++;
			t->inflight++;
			return ROUTED;
		}
		take_profile_slot(p, profile);
		if (dispatch(s, t, p, msg, len, rid, kind, deadline, now) == -EAGAIN)
			return WAIT_RING;
		return ROUTED;
	}
	uint64_t sb = 0;
	switch (kind) {
	case rw_Action_Exec:
		sb = rw_Exec_sandbox(rw_Request_action_as_Exec(r));
		break;
	case rw_Action_PutFile:
		sb = rw_PutFile_sandbox(rw_Request_action_as_PutFile(r));
		break;
	case rw_Action_GetFile:
		sb = rw_GetFile_sandbox(rw_Request_action_as_GetFile(r));
		break;
	case rw_Action_Close:
		sb = rw_Close_sandbox(rw_Request_action_as_Close(r));
		break;
	default:
		complete_local(s, t, rid, kind, rw_Status_BAD_REQUEST, false, "action not served", now);
		return ROUTED;
	}
	struct session *x = sess_find(s, sb);
	if (!x || x->t != t) {
		complete_local(s, t, rid, kind, rw_Status_NOT_FOUND, false,
			       "no such sandbox for this trainer", now);
		return ROUTED;
	}
	if (!x->pool->up) {
		complete_local(s, t, rid, kind, rw_Status_SANDBOX_LOST, true, "the sandbox's pool is down",
			       now);
		return ROUTED;
	}
	if (!x->pool->credits)
		return WAIT_RING;
	struct pool_link *p = x->pool;
	if (kind == rw_Action_Close)
		sess_remove(s, sb);
	if (dispatch(s, t, p, msg, len, rid, kind, deadline, now) == -EAGAIN)
		return WAIT_RING;
	return ROUTED;
}

static void trainer_read(struct shard *s, struct trainer *t)
{
	t->blocked = false;
	for (int n = 0; n < BUDGET; n++) {
		const void *d;
		uint32_t len;
		int rc = shm_reader_peek(&t->r, &d, &len);
		if (rc == -EAGAIN)
			return;
		if (rc) {
			RLOG(RLOG_WARN, "trainer ring refused", "trainer=%s err=%s", t->name,
			     rollout_err_name(rc));
			rd_metrics_refused(s->m);
			t->dead = true;
			return;
		}
		if (route(s, t, (uint8_t *)d, len) == WAIT_RING) {
			t->blocked = true;
			return;
		}
		shm_reader_release(&t->r);
	}
	s->busy = true; /* budget used up: come back at once */
}

static void trainer_free(struct shard *s, struct trainer *t)
{
	/* Its sandboxes are closed at their pools now; answers still in flight go nowhere. */
	for (size_t h = 0; h < NB; h++) {
		for (struct dispatch *d = s->disp[h]; d; d = d->next)
			if (d->t == t)
				d->t = NULL;
		for (struct session *x = s->sess[h], *n; x; x = n) {
			n = x->next;
			if (x->t == t) {
				if (x->pool->up)
					close_orphan(s, x->pool, x->sandbox);
				sess_remove(s, x->sandbox);
			}
		}
	}
	for (struct waiting **pp = &s->whead; *pp;) {
		struct waiting *w = *pp;
		if (w->t != t) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		s->nwaiting--;
		free(w->msg);
		free(w);
	}
	s->wtail = NULL;
	for (struct waiting *w = s->whead; w; w = w->next)
		s->wtail = w;
	while (t->bhead) {
		struct backlog *b = t->bhead;
		t->bhead = b->next;
		free(b);
		rd_metrics_backlog(s->m, -1);
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, t->sq_wake, NULL);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, t->sock, NULL);
	shm_reader_destroy(&t->r);
	shm_seg_close(&t->seg);
	close(t->sock);
	close(t->sq_wake);
	close(t->cq_wake);
	s->ntrainers--;
	rd_metrics_trainers(s->m, -1);
	RLOG(RLOG_INFO, "trainer detached", "shard=%d trainer=%s pid=%d", s->idx, t->name, t->pid);
	free(t);
}

static void adopt(struct shard *s)
{
	uint64_t v;
	ssize_t n = read(s->handoff, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&s->mu);
	struct trainer *list = s->incoming;
	s->incoming = NULL;
	pthread_mutex_unlock(&s->mu);
	while (list) {
		struct trainer *t = list;
		list = t->next;
		t->ev_sq = (struct ev){ EV_SQ, t };
		t->ev_sock = (struct ev){ EV_SOCK, t };
		struct epoll_event e1 = { .events = EPOLLIN, .data.ptr = &t->ev_sq };
		struct epoll_event e2 = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = &t->ev_sock };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, t->sq_wake, &e1);
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, t->sock, &e2);
		t->next = s->trainers;
		s->trainers = t;
		s->ntrainers++;
		rd_metrics_trainers(s->m, 1);
		s->busy = true;
	}
}

static void on_trainer_sock(struct trainer *t)
{
	char buf[256];
	ssize_t n = recv(t->sock, buf, sizeof(buf), MSG_DONTWAIT);
	/* EOF, an error, or a detach request: the trainer is leaving. */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		t->dead = true;
	else if (n >= (ssize_t)sizeof(struct rollout_detach_req)) {
		struct rollout_detach_req d;
		memcpy(&d, buf, sizeof(d));
		if (d.magic == ROLLOUT_ATTACH_MAGIC && d.type == ROLLOUT_DETACH_REQ)
			t->dead = true;
	}
}

/* ---- timers ---- */

static void tick(struct shard *s)
{
	uint64_t now = now_ns();
	const struct rd_cfg *c = s->d->cfg;
	for (int i = 0; i < s->npools; i++) {
		struct pool_link *p = &s->pools[i];
		if (now - p->last_rx > (uint64_t)c->pool_timeout_ms * 1000000ull) {
			if (p->up)
				pool_down(s, p, "no answer within pool_timeout_ms");
			else if (now - p->last_tx > (uint64_t)c->heartbeat_ms * 1000000ull) {
				pool_connect(s, p);
			}
			continue;
		}
		if (now - p->last_tx > (uint64_t)c->heartbeat_ms * 1000000ull) {
			if (!p->up) {
				pool_hello(s, p);
				continue;
			}
			struct fb_builder *b = builder(s, 256);
			rw_Heartbeat_start(b);
			rw_Heartbeat_add_sent_ns(b, now);
			fb_ref_t h = rw_Heartbeat_end(b);
			rw_Message_start(b);
			rw_Message_add_body(b, rw_Body_Heartbeat, h);
			ssize_t n = rw_Message_finish(b, rw_Message_end(b));
			if (n > 0)
				pool_send(p, s->build, (size_t)n);
		}
	}
	/* Deadlines: TIMEOUT now, and the pool is told to stop the action. */
	for (size_t h = 0; h < NB; h++)
		for (struct dispatch **pp = &s->disp[h]; *pp;) {
			struct dispatch *d = *pp;
			if (!d->deadline || d->deadline > now) {
				pp = &d->next;
				continue;
			}
			*pp = d->next;
			s->ndispatch--;
			if (d->t)
				d->t->inflight--;
			complete_local(s, d->t, d->request_id, d->kind, rw_Status_TIMEOUT, false,
				       "deadline passed", d->submitted);
			struct fb_builder *b = builder(s, 256);
			rw_Cancel_start(b);
			rw_Cancel_add_target_dispatch_id(b, d->id);
			fb_ref_t cc = rw_Cancel_end(b);
			rw_Message_start(b);
			rw_Message_add_body(b, rw_Body_Cancel, cc);
			ssize_t n = rw_Message_finish(b, rw_Message_end(b));
			if (n > 0)
				pool_send(d->pool, s->build, (size_t)n);
			/* Its credit comes back when the pool's (dropped) answer or down-ness arrives. */
			d->pool->inflight--;
			d->pool->credits++;
			free(d);
		}
	for (struct waiting **pp = &s->whead; *pp;) {
		struct waiting *w = *pp;
		if (!w->deadline || w->deadline > now) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		s->nwaiting--;
		w->t->inflight--;
		complete_local(s, w->t, w->request_id, rw_Action_Open, rw_Status_TIMEOUT, false,
			       "deadline passed waiting for capacity", w->submitted);
		free(w->msg);
		free(w);
	}
	s->wtail = NULL;
	for (struct waiting *w = s->whead; w; w = w->next)
		s->wtail = w;
}

static void serve_waiting(struct shard *s)
{
	while (s->whead) {
		struct waiting *w = s->whead;
		bool known, any_up;
		struct pool_link *p = pick_pool(s, w->profile, &known, &any_up);
		if (any_up && !known) {
			complete_local(s, w->t, w->request_id, rw_Action_Open, rw_Status_UNKNOWN_PROFILE,
				       false, "no pool offers this profile", w->submitted);
		} else if (!p) {
			return;
		} else {
			w->t->inflight--;
			take_profile_slot(p, w->profile);
			if (dispatch(s, w->t, p, w->msg, w->len, w->request_id, rw_Action_Open, w->deadline,
				     w->submitted))
				return;
		}
		s->whead = w->next;
		if (!s->whead)
			s->wtail = NULL;
		s->nwaiting--;
		free(w->msg);
		free(w);
	}
}

static void *shard_main(void *arg)
{
	struct shard *s = arg;
	char name[16];
	snprintf(name, sizeof(name), "rolloutd-s%d", s->idx);
	pthread_setname_np(pthread_self(), name);
	if (s->ncpus && s->d->have_topo) {
		hwloc_bitmap_t got = hwloc_bitmap_alloc();
		int rc = pin_bind_thread(&s->d->topo, s->cpus, s->ncpus, got);
		char *list = NULL;
		hwloc_bitmap_list_asprintf(&list, got);
		if (rc)
			RLOG(RLOG_WARN, "shard not pinned", "shard=%d err=%s", s->idx, rollout_err_name(rc));
		else
			RLOG(RLOG_INFO, "shard pinned", "shard=%d cpus=%s memory_node=%d", s->idx,
			     list ? list : "?", s->memory_node);
		free(list);
		hwloc_bitmap_free(got);
	}
	for (int i = 0; i < s->npools; i++)
		pool_connect(s, &s->pools[i]);
	uint64_t last_tick = 0, drain_until = 0;
	struct epoll_event evs[64];
	for (;;) {
		if (*s->d->stop) {
			if (!drain_until)
				drain_until = now_ns() + (uint64_t)s->d->cfg->drain_ms * 1000000ull;
			if (s->ndispatch == 0 || now_ns() > drain_until)
				break;
		}
		int timeout = s->busy ? 0 : TICK_MS;
		s->busy = false;
		for (struct trainer *t = s->trainers; t && timeout; t = t->next)
			if (t->blocked || t->bhead)
				timeout = 1;
		int n = epoll_wait(s->epfd, evs, 64, timeout);
		for (int i = 0; i < n; i++) {
			struct ev *e = evs[i].data.ptr;
			if (e->type == EV_HANDOFF)
				adopt(s);
			else if (e->type == EV_SQ)
				shm_reader_disarm(&((struct trainer *)e->obj)->r);
			else if (e->type == EV_SOCK)
				on_trainer_sock(e->obj);
		}
		for (int i = 0; i < s->npools; i++)
			on_pool_readable(s, &s->pools[i]);
		serve_waiting(s);
		for (struct trainer **pp = &s->trainers; *pp;) {
			struct trainer *t = *pp;
			if (!t->dead && shm_seg_state(&t->seg) == SHM_STATE_CLOSING)
				t->dead = true;
			if (t->dead) {
				*pp = t->next;
				trainer_free(s, t);
				continue;
			}
			trainer_read(s, t);
			cq_flush(s, t);
			if (!t->blocked && shm_reader_arm(&t->r) == -EAGAIN)
				s->busy = true;
			pp = &t->next;
		}
		uint64_t now = now_ns();
		if (now - last_tick > TICK_MS * 1000000ull) {
			tick(s);
			last_tick = now;
			rd_metrics_gauges(s->m, s->idx, s->ndispatch, s->nsessions, s->nwaiting);
			uint64_t pending = 0;
			for (struct trainer *t = s->trainers; t; t = t->next)
				pending += shm_reader_pending(&t->r);
			rd_metrics_ring(s->m, s->idx, pending);
			for (int i = 0; i < s->npools; i++) {
				uint32_t free_sb = 0;
				for (int k = 0; k < s->pools[i].nprof; k++)
					free_sb += s->pools[i].prof[k].free;
				rd_metrics_pool_capacity(s->m, s->idx, i, s->pools[i].credits, free_sb);
			}
		}
	}
	while (s->trainers) {
		struct trainer *t = s->trainers;
		s->trainers = t->next;
		cq_flush(s, t);
		trainer_free(s, t);
	}
	for (int i = 0; i < s->npools; i++)
		if (s->pools[i].sock)
			zmq_close(s->pools[i].sock);
	return NULL;
}

/* ---- attach ---- */

static void attach_reply(int fd, int status, const char *msg)
{
	struct rollout_attach_resp r = { .magic = ROLLOUT_ATTACH_MAGIC,
					 .version = ROLLOUT_ATTACH_VERSION,
					 .type = ROLLOUT_ATTACH_RESP,
					 .status = status,
					 .memory_node = -1 };
	snprintf(r.message, sizeof(r.message), "%s", msg);
	send(fd, &r, sizeof(r), MSG_NOSIGNAL);
}

static void on_attach(struct rd *d, int fd)
{
	struct rollout_attach_req req;
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int pid;
	unsigned uid, gid;
	/* A peer that does not send its request promptly is not waited for. */
	if (poll(&pf, 1, 1000) != 1 || recv(fd, &req, sizeof(req), 0) != sizeof(req) ||
	    req.magic != ROLLOUT_ATTACH_MAGIC || req.type != ROLLOUT_ATTACH_REQ) {
		attach_reply(fd, ROLLOUT_E_PROTOCOL, "bad attach request");
		close(fd);
		return;
	}
	if (req.version != ROLLOUT_ATTACH_VERSION) {
		attach_reply(fd, ROLLOUT_E_ABI, "attach protocol version mismatch");
		close(fd);
		return;
	}
	if (shm_peer_cred(fd, &pid, &uid, &gid)) {
		close(fd);
		return;
	}
	struct trainer *t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return;
	}
	t->sock = fd;
	t->pid = pid;
	memcpy(t->name, req.name, sizeof(t->name) - 1);
	for (char *c = t->name; *c; c++)
		if (*c == '"' || *c == '\\' || *c < 32)
			*c = '_';
	uint32_t shard = req.gpu >= 0 ? (uint32_t)req.gpu % d->nshards : (uint32_t)pid % d->nshards;
	struct shm_seg_opts so = { .sq_size = d->cfg->ring_bytes,
				   .cq_size = d->cfg->ring_bytes,
				   .sq_max_record = d->cfg->max_record,
				   .cq_max_record = d->cfg->max_record,
				   .memory_node = d->shards[shard].memory_node,
				   .features = SHM_FEAT_EVENTFD_WAKE,
				   .epoch = d->epoch };
	int rc = shm_seg_create(&t->seg, &so);
	t->sq_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->cq_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rc || t->sq_wake < 0 || t->cq_wake < 0) {
		attach_reply(fd, rc ? rc : -EMFILE, "cannot create the segment");
		goto fail;
	}
	struct shm_waitcfg rc_cfg, wc_cfg;
	shm_waitcfg_default(&rc_cfg);
	rc_cfg.spin_ns = 0;
	rc_cfg.wait_fd = t->sq_wake;
	rc_cfg.peer_fd = fd;
	shm_waitcfg_default(&wc_cfg);
	wc_cfg.wake_fd = t->cq_wake;
	wc_cfg.peer_fd = fd;
	if (shm_reader_init(&t->r, &t->seg, SHM_SQ, &rc_cfg) ||
	    shm_writer_init(&t->w, &t->seg, SHM_CQ, &wc_cfg)) {
		attach_reply(fd, -ENOMEM, "cannot set up the rings");
		goto fail;
	}
	struct rollout_attach_resp r = { .magic = ROLLOUT_ATTACH_MAGIC,
					 .version = ROLLOUT_ATTACH_VERSION,
					 .type = ROLLOUT_ATTACH_RESP,
					 .shard = shard,
					 .epoch = d->epoch,
					 .segment_bytes = (uint32_t)t->seg.size,
					 .nfds = 3,
					 .memory_node = t->seg.hdr.memory_node };
	r.fd_roles[0] = ROLLOUT_FD_SEGMENT;
	r.fd_roles[1] = ROLLOUT_FD_SQ_WAKE;
	r.fd_roles[2] = ROLLOUT_FD_CQ_WAKE;
	int fds[3] = { t->seg.fd, t->sq_wake, t->cq_wake };
	if (shm_send_fds(fd, &r, sizeof(r), fds, 3))
		goto fail;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	RLOG(RLOG_INFO, "trainer attached", "shard=%u trainer=%s pid=%d uid=%u ring_bytes=%u", shard, t->name,
	     pid, uid, d->cfg->ring_bytes);
	struct shard *s = &d->shards[shard];
	pthread_mutex_lock(&s->mu);
	t->next = s->incoming;
	s->incoming = t;
	pthread_mutex_unlock(&s->mu);
	uint64_t one = 1;
	ssize_t w = write(s->handoff, &one, sizeof(one));
	(void)w;
	return;
fail:
	shm_reader_destroy(&t->r);
	if (t->seg.base)
		shm_seg_close(&t->seg);
	if (t->sq_wake >= 0)
		close(t->sq_wake);
	if (t->cq_wake >= 0)
		close(t->cq_wake);
	close(fd);
	free(t);
}

/* Expands a pool given by DNS name into one endpoint per address it resolves to. */
static int resolve_pools(const struct rd_cfg *c, struct pool_link **out, int *n)
{
	int cap = 16, k = 0;
	struct pool_link *v = calloc((size_t)cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (unsigned i = 0; i < c->pools_count; i++) {
		const struct rd_pool_cfg *pc = &c->pools[i];
		if (pc->endpoint) {
			if (k == cap && !(v = realloc(v, (size_t)(cap *= 2) * sizeof(*v))))
				return -ENOMEM;
			memset(&v[k], 0, sizeof(v[k]));
			v[k].cfg = pc;
			snprintf(v[k].endpoint, sizeof(v[k].endpoint), "%s", pc->endpoint);
			k++;
			continue;
		}
		char host[256];
		const char *colon = strrchr(pc->dns, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - pc->dns), pc->dns);
		struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
		int rc = getaddrinfo(host, colon + 1, &hints, &res);
		if (rc) {
			RLOG(RLOG_ERROR, "pool name does not resolve", "dns=%s err=\"%s\"", pc->dns,
			     gai_strerror(rc));
			continue;
		}
		for (struct addrinfo *a = res; a; a = a->ai_next) {
			char ip[64];
			if (getnameinfo(a->ai_addr, a->ai_addrlen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST))
				continue;
			if (k == cap && !(v = realloc(v, (size_t)(cap *= 2) * sizeof(*v))))
				return -ENOMEM;
			memset(&v[k], 0, sizeof(v[k]));
			v[k].cfg = pc;
			snprintf(v[k].endpoint, sizeof(v[k].endpoint),
				 a->ai_family == AF_INET6 ? "tcp://[%s]:%s" : "tcp://%s:%s", ip, colon + 1);
			k++;
		}
		freeaddrinfo(res);
	}
	*out = v;
	*n = k;
	return 0;
}

int rd_create(struct rd **out, const struct rd_cfg *cfg, char *err, size_t errsz)
{
	struct rd *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	d->listen_fd = -1;
	d->epoch = now_ns() ^ ((uint64_t)getpid() << 40);
	int rc = 0;
	if (cfg->curve_secret_key && !zmq_has("curve")) {
		snprintf(err, errsz, "CURVE keys configured but libzmq has no CURVE support");
		rc = -ENOTSUP;
		goto fail;
	}
	d->zctx = zmq_ctx_new();
	d->nshards = cfg->shards;
	d->shards = calloc(d->nshards, sizeof(*d->shards));
	if (!d->shards) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = rd_metrics_start(&d->m, cfg->metrics, d->nshards);
	if (rc) {
		snprintf(err, errsz, "metrics endpoint %s: %s", cfg->metrics, rollout_strerror(rc));
		goto fail;
	}
	/* Placement: each shard on a core of its GPU's NUMA node, its rings' pages there too. */
	struct pin_plan plan = { 0 };
	if (pin_topo_load(&d->topo, NULL, NULL) == 0) {
		d->have_topo = true;
		const char *ids[64];
		for (unsigned i = 0; i < cfg->gpus_count && i < 64; i++)
			ids[i] = cfg->gpus[i].pci_bus_id;
		struct pin_request rq = { .gpu_bus_ids = ids,
					  .ngpus = cfg->gpus_count,
					  .reserved_cpus = cfg->reserved_cpus };
		char perr[256];
		if ((rc = pin_plan_make(&d->topo, &rq, &plan, perr, sizeof(perr)))) {
			snprintf(err, errsz, "placement: %s", perr);
			goto fail;
		}
		for (int w = 0; w < plan.nwarnings; w++)
			RLOG(RLOG_WARN, "placement", "warning=\"%s\"", plan.warnings[w]);
	}
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct shard *s = &d->shards[i];
		s->memory_node = -1;
		if (plan.ngpus) {
			const struct pin_gpu *g = &plan.gpus[i % (uint32_t)plan.ngpus];
			s->ncpus = g->nshard_cpus;
			memcpy(s->cpus, g->shard_cpus, sizeof(s->cpus));
			s->memory_node = g->memory_node;
		}
	}
	pin_plan_free(&plan);
	for (uint32_t i = 0; i < d->nshards; i++) {
		struct shard *s = &d->shards[i];
		s->d = d;
		s->idx = (int)i;
		s->m = d->m;
		pthread_mutex_init(&s->mu, NULL);
		s->epfd = epoll_create1(EPOLL_CLOEXEC);
		s->handoff = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->ev_handoff = (struct ev){ EV_HANDOFF, s };
		struct epoll_event e = { .events = EPOLLIN, .data.ptr = &s->ev_handoff };
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->handoff, &e);
		if ((rc = resolve_pools(cfg, &s->pools, &s->npools)))
			goto fail;
		for (int k = 0; k < s->npools; k++)
			s->pools[k].ev = (struct ev){ EV_POOL, &s->pools[k] };
		if (s->npools == 0) {
			snprintf(err, errsz, "no pool endpoint resolved");
			rc = -ENOENT;
			goto fail;
		}
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket);
	d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct stat st;
	if (lstat(cfg->socket, &st) == 0 && S_ISSOCK(st.st_mode)) {
		/* A stale socket of a dead rolloutd is replaced; a live one is refused. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(err, errsz, "another rolloutd serves %s", cfg->socket);
			rc = -EADDRINUSE;
			goto fail;
		}
		close(probe);
		unlink(cfg->socket);
	}
	if (bind(d->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(d->listen_fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot listen on %s: %s", cfg->socket, strerror(errno));
		goto fail;
	}
	chmod(cfg->socket, 0660);
	*out = d;
	return 0;
fail:
	rd_destroy(d);
	return rc;
}

int rd_run(struct rd *d, volatile int *stop)
{
	d->stop = stop;
	for (uint32_t i = 0; i < d->nshards; i++)
		if (pthread_create(&d->shards[i].th, NULL, shard_main, &d->shards[i]))
			return -EAGAIN;
	RLOG(RLOG_INFO, "rolloutd serving", "socket=%s shards=%u pools=%d", d->cfg->socket, d->nshards,
	     d->shards[0].npools);
	while (!*stop) {
		struct pollfd pf = { .fd = d->listen_fd, .events = POLLIN };
		if (poll(&pf, 1, 200) == 1) {
			int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				on_attach(d, fd);
		}
	}
	RLOG(RLOG_INFO, "draining", "drain_ms=%u", d->cfg->drain_ms);
	for (uint32_t i = 0; i < d->nshards; i++)
		pthread_join(d->shards[i].th, NULL);
	RLOG(RLOG_INFO, "rolloutd stopped", "shards=%u", d->nshards);
	return 0;
}

void rd_destroy(struct rd *d)
{
	if (!d)
		return;
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->cfg->socket);
	}
	for (uint32_t i = 0; d->shards && i < d->nshards; i++) {
		struct shard *s = &d->shards[i];
		for (size_t h = 0; h < NB; h++) {
			while (s->disp[h]) {
				struct dispatch *x = s->disp[h];
				s->disp[h] = x->next;
				free(x);
			}
			while (s->sess[h]) {
				struct session *x = s->sess[h];
				s->sess[h] = x->next;
				free(x);
			}
		}
		free(s->pools);
		free(s->build);
		if (s->epfd > 0)
			close(s->epfd);
		if (s->handoff > 0)
			close(s->handoff);
	}
	free(d->shards);
	if (d->have_topo)
		pin_topo_free(&d->topo);
	if (d->zctx)
		zmq_ctx_term(d->zctx);
	rd_metrics_stop(d->m);
	free(d);
}
