/* rollout-pool's event loop. Coordinators talk to one ROUTER socket; every message is a
 * verified wire Message. Sandboxes come from the zygote, sit warm until an Open claims one,
 * then belong to the coordinator connection that opened them until Close or lease expiry.
 * Each sandbox runs one action at a time; later ones queue behind it. Every dispatch gets
 * exactly one answer, which is also remembered for result_cache_s so a dispatch that
 * arrives again (a reconnect) gets the same answer instead of running twice. */
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "metrics.h"
#include "pin.h"
#include "rollout/error.h"
#include "rollout_wire.h"
#include "zygote.h"

#define POOL_VERSION    "0.1.0"
#define NBUCKET         4096
#define TICK_MS         50
#define BACKSTOP_MS     2000 /* an action gets this long past its timeout before its sandbox is declared lost */
#define DRAIN_MS        10000
#define CACHE_MAX_BYTES (256u << 20)
#define EV_ROUTER       0ull /* epoll tags; sandbox ids are 1.. */
#define EV_ZYGOTE       UINT64_MAX

enum box_state { BOX_CREATING, BOX_WARM, BOX_LEASED };

struct peer {
	uint8_t rid[256];
	size_t rid_len;
	uint64_t last_seen;
	uint32_t lease_ms;
	bool hello;
	uint32_t boxes;
	struct peer *next;
};

struct job {
	struct peer *peer;
	uint64_t dispatch;
	uint64_t request_id;
	uint32_t timeout_ms;
	int kind; /* rw_Action_* */
	uint64_t started;
	uint8_t *msg;
	size_t len;
	struct job *next;
};

struct box {
	struct sbx s;
	int profile;
	enum box_state state;
	struct peer *owner;
	struct job *cur;
	uint64_t cur_deadline;
	struct job *qhead, *qtail;
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint64_t oom_seen;
	struct box *hnext; /* id hash chain */
	struct box *wnext; /* warm list of its profile */
};

struct cached {
	struct peer *peer;
	uint64_t dispatch;
	uint64_t expires;
	bool done;
	uint8_t *bytes;
	size_t len;
	struct cached *hnext;
	struct cached *fnext; /* FIFO by insertion, for expiry */
};

struct profile_state {
	struct sbx_profile sp;
	uint32_t total, leased, warm, creating;
	struct box *warm_list;
	struct job *waiting_head, *waiting_tail; /* opens waiting for a sandbox */
	uint32_t waiting;
	uint32_t fail_streak; /* creations failed in a row: refills back off */
	uint64_t retry_at;
};

struct pool {
	const struct pool_cfg *cfg;
	struct sbx_runtime rt;
	struct zygote zy;
	struct profile_state *prof;
	size_t nprof;
	void *zctx, *router;
	int epfd;
	uint64_t boot_id;
	uint64_t next_id;
	struct box *boxes[NBUCKET];
	struct peer *peers;
	struct cached **cache; /* hash table, grown to keep chains short */
	size_t cache_nb, cache_n;
	struct cached *cache_head, *cache_tail;
	size_t cache_bytes;
	uint64_t last_capacity_sent;
	bool capacity_dirty;
	bool draining;
	uint32_t inflight;
	struct pool_metrics *m;
	uint8_t *build;
	size_t build_cap;
	pthread_t zap;
	bool zap_running;
	uint8_t (*allowed)[32];
	size_t nallowed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (size_t)(v % NBUCKET);
}

/* ---- sending ---- */

static void send_to(struct pool *p, struct peer *peer, const void *buf, size_t len)
{
	if (zmq_send(p->router, peer->rid, peer->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return; /* peer gone (ROUTER_MANDATORY) or its queue full: it will resend */
	zmq_send(p->router, buf, len, ZMQ_DONTWAIT);
}

static struct fb_builder *builder(struct pool *p, size_t need)
{
	static struct fb_builder b;
	if (p->build_cap < need) {
		free(p->build);
		p->build_cap = need < 65536 ? 65536 : need;
		p->build = aligned_alloc(8, (p->build_cap + 7) & ~(size_t)7);
	}
	fb_builder_init(&b, p->build, p->build_cap);
	return &b;
}

static void cache_put(struct pool *p, struct peer *peer, uint64_t dispatch, const void *bytes, size_t len);

/* Sends a Completion for a dispatch and remembers it. */
static void complete(struct pool *p, struct peer *peer, uint64_t dispatch, uint64_t request_id, int status,
		     bool infra, const char *message, int rkind, uint64_t sandbox)
{
	struct fb_builder *b = builder(p, 1024 + (message ? strlen(message) : 0));
	fb_ref_t msg = message ? fb_create_string(b, message) : 0;
	fb_ref_t result = 0;
	if (rkind == rw_Result_Opened) {
		rw_Opened_start(b);
		rw_Opened_add_sandbox(b, sandbox);
		result = rw_Opened_end(b);
	} else if (rkind == rw_Result_Closed) {
		rw_Closed_start(b);
		result = rw_Closed_end(b);
	} else if (rkind == rw_Result_ExecResult) {
		rw_ExecResult_start(b);
		result = rw_ExecResult_end(b);
	} else if (rkind == rw_Result_FileData) {
		rw_FileData_start(b);
		result = rw_FileData_end(b);
	}
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, request_id);
	rw_Completion_add_status(b, (uint16_t)status);
	rw_Completion_add_infra_failed(b, infra);
	rw_Completion_add_message(b, msg);
	if (result)
		rw_Completion_add_result(b, (uint8_t)rkind, result);
	fb_ref_t c = rw_Completion_end(b);
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, dispatch);
	rw_Message_add_body(b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n < 0)
		return;
	pool_metrics_completion(p->m, status);
	cache_put(p, peer, dispatch, p->build, (size_t)n);
	send_to(p, peer, p->build, (size_t)n);
}

static void job_complete(struct pool *p, struct job *j, int status, bool infra, const char *message)
{
	int rkind = 0;
	if (j->kind == rw_Action_Exec && status == rw_Status_OK)
		rkind = rw_Result_ExecResult;
	complete(p, j->peer, j->dispatch, j->request_id, status, infra, message, rkind, 0);
}

static void job_free(struct job *j)
{
	if (j) {
		free(j->msg);
		free(j);
	}
}

/* ---- result cache (dedupe of dispatch ids) ---- */

static size_t cache_hash(const struct pool *p, struct peer *peer, uint64_t dispatch)
{
	uint64_t v = dispatch ^ ((uint64_t)(uintptr_t)peer * 0x9e3779b97f4a7c15ull);
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (size_t)(v & (p->cache_nb - 1));
}

static struct cached *cache_find(struct pool *p, struct peer *peer, uint64_t dispatch)
{
	if (!p->cache)
		return NULL;
	for (struct cached *c = p->cache[cache_hash(p, peer, dispatch)]; c; c = c->hnext)
		if (c->peer == peer && c->dispatch == dispatch)
			return c;
	return NULL;
}

static void cache_unlink(struct pool *p, struct cached *c)
{
	struct cached **pp = &p->cache[cache_hash(p, c->peer, c->dispatch)];
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	p->cache_bytes -= c->len + sizeof(*c);
	p->cache_n--;
	free(c->bytes);
	free(c);
}

static bool cache_grow(struct pool *p)
{
	size_t nb = p->cache_nb ? p->cache_nb * 2 : 4096;
	struct cached **t = calloc(nb, sizeof(*t));
	if (!t)
		return p->cache != NULL;
	struct cached **old = p->cache;
	size_t onb = p->cache_nb;
	p->cache = t;
	p->cache_nb = nb;
	for (size_t i = 0; i < onb; i++)
		for (struct cached *c = old[i], *n; c; c = n) {
			n = c->hnext;
			size_t h = cache_hash(p, c->peer, c->dispatch);
			c->hnext = t[h];
			t[h] = c;
		}
	free(old);
	return true;
}

/* Marks a dispatch as seen (in flight) so a duplicate is not run again. */
static struct cached *cache_begin(struct pool *p, struct peer *peer, uint64_t dispatch)
{
	if ((!p->cache || p->cache_n + 1 > p->cache_nb * 2) && !cache_grow(p))
		return NULL;
	struct cached *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->peer = peer;
	c->dispatch = dispatch;
	c->expires = UINT64_MAX;
	size_t h = cache_hash(p, peer, dispatch);
	c->hnext = p->cache[h];
	p->cache[h] = c;
	p->cache_n++;
	p->cache_bytes += sizeof(*c);
	if (p->cache_tail)
		p->cache_tail->fnext = c;
	else
		p->cache_head = c;
	p->cache_tail = c;
	return c;
}

static void cache_put(struct pool *p, struct peer *peer, uint64_t dispatch, const void *bytes, size_t len)
{
	struct cached *c = cache_find(p, peer, dispatch);
	if (!c && !(c = cache_begin(p, peer, dispatch)))
		return;
	if (c->done)
		return;
	c->done = true;
	c->expires = now_ns() + (uint64_t)p->cfg->result_cache_s * 1000000000ull;
	c->bytes = malloc(len);
	if (c->bytes) {
		memcpy(c->bytes, bytes, len);
		c->len = len;
		p->cache_bytes += len;
	}
}

static void cache_expire(struct pool *p, uint64_t now)
{
	/* Entries finish out of order; expire from the front while they are due (or while the
	 * cache is over its byte budget), skipping nothing that is still in flight. */
	struct cached **pp = &p->cache_head, *prev = NULL;
	while (*pp) {
		struct cached *c = *pp;
		if (c->done && (c->expires <= now || p->cache_bytes > CACHE_MAX_BYTES)) {
			*pp = c->fnext;
			if (p->cache_tail == c)
				p->cache_tail = prev;
			cache_unlink(p, c);
			continue;
		}
		if (!c->done || c->expires > now)
			break;
	}
}

/* ---- sandboxes ---- */

static struct box *box_find(struct pool *p, uint64_t id)
{
	for (struct box *b = p->boxes[hash_u64(id)]; b; b = b->hnext)
		if (b->s.id == id)
			return b;
	return NULL;
}

static void box_insert(struct pool *p, struct box *b)
{
	size_t h = hash_u64(b->s.id);
	b->hnext = p->boxes[h];
	p->boxes[h] = b;
}

static void box_unlink(struct pool *p, struct box *b)
{
	struct box **pp = &p->boxes[hash_u64(b->s.id)];
	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
}

static void warm_remove(struct profile_state *ps, struct box *b)
{
	struct box **pp = &ps->warm_list;
	while (*pp && *pp != b)
		pp = &(*pp)->wnext;
	if (*pp) {
		*pp = b->wnext;
		ps->warm--;
	}
}

/* Ends a sandbox: every job on it completes with `status`, the zygote tears it down. */
static void box_kill(struct pool *p, struct box *b, int status, const char *why)
{
	struct profile_state *ps = &p->prof[b->profile];
	if (b->cur) {
		job_complete(p, b->cur, status, status == rw_Status_SANDBOX_LOST, why);
		job_free(b->cur);
		p->inflight--;
		b->cur = NULL;
	}
	for (struct job *j = b->qhead, *n; j; j = n) {
		n = j->next;
		job_complete(p, j, status == rw_Status_SANDBOX_LOST ? status : rw_Status_CANCELLED,
			     status == rw_Status_SANDBOX_LOST, why);
		job_free(j);
	}
	b->qhead = b->qtail = NULL;
	if (b->state == BOX_WARM)
		warm_remove(ps, b);
	if (b->state == BOX_LEASED) {
		ps->leased--;
		if (b->owner)
			b->owner->boxes--;
	}
	ps->total--;
	if (b->s.fd >= 0) {
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, b->s.fd, NULL);
		close(b->s.fd);
		zy_request(&p->zy, ZY_DESTROY, 0, b->s.id);
	}
	box_unlink(p, b);
	free(b->rbuf);
	free(b);
	p->capacity_dirty = true;
	pool_metrics_sandboxes(p->m, -1);
}

static int start_create(struct pool *p, int profile)
{
	struct profile_state *ps = &p->prof[profile];
	if (ps->total >= ps->sp.max)
		return -EAGAIN;
	struct box *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->s.id = ++p->next_id;
	b->s.fd = b->s.pidfd = -1;
	b->profile = profile;
	b->state = BOX_CREATING;
	if (ps->sp.type == SBX_NOOP) {
		b->state = BOX_WARM;
		b->wnext = ps->warm_list;
		ps->warm_list = b;
		ps->warm++;
		ps->total++;
		box_insert(p, b);
		pool_metrics_sandboxes(p->m, 1);
		return 0;
	}
	int rc = zy_request(&p->zy, ZY_CREATE, (uint32_t)profile, b->s.id);
	if (rc) {
		free(b);
		return rc;
	}
	ps->total++;
	ps->creating++;
	box_insert(p, b);
	pool_metrics_sandboxes(p->m, 1);
	return 0;
}

static void dispatch_next(struct pool *p, struct box *b);

/* Keeps the zygote busy while the profile is below its warm target or opens wait: a few
 * requests queued at the zygote, so it never idles between two creations. */
static void refill(struct pool *p, int profile)
{
	struct profile_state *ps = &p->prof[profile];
	if (p->draining || (ps->fail_streak && now_ns() < ps->retry_at))
		return;
	while (ps->warm + ps->creating < ps->sp.warm + ps->waiting && ps->creating < 4 &&
	       ps->total < ps->sp.max)
		if (start_create(p, profile))
			break;
}

static void lease_to(struct pool *p, struct box *b, struct job *open)
{
	struct profile_state *ps = &p->prof[b->profile];
	if (b->state == BOX_WARM)
		warm_remove(ps, b);
	b->state = BOX_LEASED;
	b->owner = open->peer;
	open->peer->boxes++;
	ps->leased++;
	p->capacity_dirty = true;
	complete(p, open->peer, open->dispatch, open->request_id, rw_Status_OK, false, NULL, rw_Result_Opened,
		 b->s.id);
}

static void on_zygote(struct pool *p)
{
	struct zy_resp r;
	int fd = -1, pidfd = -1;
	int rc = zy_receive(&p->zy, &r, &fd, &pidfd);
	if (rc == -EAGAIN)
		return;
	if (rc) {
		RLOG(RLOG_ERROR, "zygote failed", "err=%s", rollout_err_name(rc));
		p->draining = true;
		return;
	}
	struct box *b = box_find(p, r.id);
	if (!b || b->state != BOX_CREATING) {
		if (fd >= 0)
			close(fd), close(pidfd);
		if (r.status == 0)
			zy_request(&p->zy, ZY_DESTROY, 0, r.id);
		return;
	}
	struct profile_state *ps = &p->prof[b->profile];
	ps->creating--;
	if (r.status) {
		/* Back off (100 ms doubling to 30 s) so a broken profile does not spin the zygote. */
		ps->fail_streak++;
		uint64_t delay_ms = 100ull << (ps->fail_streak < 9 ? ps->fail_streak - 1 : 8);
		if (delay_ms > 30000)
			delay_ms = 30000;
		ps->retry_at = now_ns() + delay_ms * 1000000ull;
		if ((ps->fail_streak & (ps->fail_streak - 1)) == 0)
			RLOG(RLOG_WARN, "sandbox creation failed",
			     "profile=%s err=%s failures_in_a_row=%u retry_ms=%llu", ps->sp.name,
			     rollout_err_name(r.status), ps->fail_streak, (unsigned long long)delay_ms);
		pool_metrics_create_failed(p->m);
		/* Opens waiting for this profile get NO_CAPACITY only if nothing else is coming. */
		box_kill(p, b, rw_Status_INTERNAL, "sandbox creation failed");
		if (ps->creating == 0) {
			for (struct job *j = ps->waiting_head, *n; j; j = n) {
				n = j->next;
				job_complete(p, j, rw_Status_INTERNAL, true, "sandbox creation failed");
				job_free(j);
			}
			ps->waiting_head = ps->waiting_tail = NULL;
			ps->waiting = 0;
		}
		return;
	}
	/* Init's death shows as EOF on its socket; the pidfd is not needed here (the zygote
	 * keeps one to kill it), and one descriptor per sandbox keeps 10k sandboxes possible. */
	close(pidfd);
	ps->fail_streak = 0;
	b->s.fd = fd;
	b->s.pidfd = -1;
	b->s.pid = r.pid;
	b->s.uid = r.uid;
	b->oom_seen = r.oom_before;
	snprintf(b->s.cgname, sizeof(b->s.cgname), "sbx-%llu", (unsigned long long)b->s.id);
	pool_metrics_create_ns(p->m, r.create_ns);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = b->s.id };
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
	if (ps->waiting_head) {
		struct job *j = ps->waiting_head;
		ps->waiting_head = j->next;
		if (!ps->waiting_head)
			ps->waiting_tail = NULL;
		ps->waiting--;
		lease_to(p, b, j);
		job_free(j);
		refill(p, b->profile);
		return;
	}
	b->state = BOX_WARM;
	b->wnext = ps->warm_list;
	ps->warm_list = b;
	ps->warm++;
	p->capacity_dirty = true;
	refill(p, b->profile);
}

/* Sends the job's request to the sandbox's init. */
static void dispatch_next(struct pool *p, struct box *b)
{
	while (!b->cur && b->qhead) {
		struct job *j = b->qhead;
		b->qhead = j->next;
		if (!b->qhead)
			b->qtail = NULL;
		j->next = NULL;
		struct profile_state *ps = &p->prof[b->profile];
		if (ps->sp.type == SBX_NOOP) {
			/* The benchmark aid: answers without running anything. */
			job_complete(p, j, rw_Status_OK, false, NULL);
			job_free(j);
			continue;
		}
		uint32_t len = (uint32_t)j->len;
		struct iovec iov[2] = { { &len, 4 }, { j->msg, j->len } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		size_t want = 4 + j->len, sent = 0;
		/* init reads whenever it is idle, which it is when nothing is in flight. */
		int fl = fcntl(b->s.fd, F_GETFL);
		fcntl(b->s.fd, F_SETFL, fl & ~O_NONBLOCK);
		while (sent < want) {
			ssize_t n = sendmsg(b->s.fd, &mh, MSG_NOSIGNAL);
			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				break;
			}
			sent += (size_t)n;
			while (n > 0 && mh.msg_iovlen) {
				if ((size_t)n >= mh.msg_iov[0].iov_len) {
					n -= (ssize_t)mh.msg_iov[0].iov_len;
					mh.msg_iov++;
					mh.msg_iovlen--;
				} else {
					mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
					mh.msg_iov[0].iov_len -= (size_t)n;
					n = 0;
				}
			}
		}
		fcntl(b->s.fd, F_SETFL, fl | O_NONBLOCK);
		b->cur = j;
		j->started = now_ns();
		p->inflight++;
		uint32_t t = j->timeout_ms ? j->timeout_ms : ps->sp.timeout_ms;
		if (t > ps->sp.max_timeout_ms)
			t = ps->sp.max_timeout_ms;
		b->cur_deadline = now_ns() + ((uint64_t)t + BACKSTOP_MS) * 1000000ull;
		if (sent < want) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox stopped reading");
			return;
		}
	}
}

/* Re-encodes an exec completion with MEMORY_LIMIT (the cgroup says the memory limit killed
 * a process of the sandbox during this action). */
static size_t as_memory_limit(struct pool *p, const uint8_t *msg)
{
	const rw_Message_t *m = rw_Message_root(msg);
	const rw_Completion_t *c = rw_Message_body_as_Completion(m);
	const rw_ExecResult_t *er = rw_Completion_result_as_ExecResult(c);
	const uint8_t *so = NULL, *se = NULL;
	size_t nso = er ? rw_ExecResult_stdout(er, &so) : 0, nse = er ? rw_ExecResult_stderr(er, &se) : 0;
	struct fb_builder *b = builder(p, 4096 + nso + nse);
	fb_ref_t vso = fb_create_vec_u8(b, so, nso), vse = fb_create_vec_u8(b, se, nse);
	fb_ref_t text = fb_create_string(b, "killed at the sandbox memory limit");
	rw_ExecResult_start(b);
	if (er) {
		rw_ExecResult_add_exit_code(b, rw_ExecResult_exit_code(er));
		rw_ExecResult_add_signal(b, rw_ExecResult_signal(er));
		rw_ExecResult_add_stdout_truncated(b, rw_ExecResult_stdout_truncated(er));
		rw_ExecResult_add_stderr_truncated(b, rw_ExecResult_stderr_truncated(er));
		rw_ExecResult_add_wall_us(b, rw_ExecResult_wall_us(er));
		rw_ExecResult_add_cpu_us(b, rw_ExecResult_cpu_us(er));
		rw_ExecResult_add_peak_memory_kib(b, rw_ExecResult_peak_memory_kib(er));
	}
	rw_ExecResult_add_stdout(b, vso);
	rw_ExecResult_add_stderr(b, vse);
	fb_ref_t r = rw_ExecResult_end(b);
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, rw_Completion_request_id(c));
	rw_Completion_add_status(b, rw_Status_MEMORY_LIMIT);
	rw_Completion_add_message(b, text);
	rw_Completion_add_result(b, rw_Result_ExecResult, r);
	fb_ref_t cc = rw_Completion_end(b);
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, rw_Message_dispatch_id(m));
	rw_Message_add_body(b, rw_Body_Completion, cc);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	return n < 0 ? 0 : (size_t)n;
}

static void on_init_frame(struct pool *p, struct box *b, uint8_t *msg, size_t len)
{
	struct job *j = b->cur;
	if (!j || rw_Message_verify(msg, len) != 0) {
		pool_metrics_refused(p->m);
		box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox init sent a malformed answer");
		return;
	}
	const rw_Message_t *m = rw_Message_root(msg);
	const rw_Completion_t *c = rw_Message_body_as_Completion(m);
	if (!c || rw_Message_dispatch_id(m) != j->dispatch) {
		pool_metrics_refused(p->m);
		box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox init answered the wrong dispatch");
		return;
	}
	int status = rw_Completion_status(c);
	if (j->kind == rw_Action_Exec && p->rt.cgroups) {
		uint64_t oom = cg_oom_kills(&p->rt.cg, b->s.cgname);
		if (oom > b->oom_seen) {
			b->oom_seen = oom;
			size_t n = as_memory_limit(p, msg);
			if (n) {
				msg = p->build;
				len = n;
				status = rw_Status_MEMORY_LIMIT;
			}
		}
	}
	pool_metrics_completion(p->m, status);
	if (j->kind == rw_Action_Exec)
		pool_metrics_exec_ns(p->m, now_ns() - j->started);
	cache_put(p, j->peer, j->dispatch, msg, len);
	send_to(p, j->peer, msg, len);
	job_free(j);
	b->cur = NULL;
	p->inflight--;
	dispatch_next(p, b);
}

static void on_box_readable(struct pool *p, struct box *b)
{
	for (;;) {
		if (b->rcap - b->rlen < 65536) {
			size_t cap = b->rcap ? b->rcap * 2 : 65536 * 2;
			uint8_t *nb = realloc(b->rbuf, cap);
			if (!nb) {
				box_kill(p, b, rw_Status_SANDBOX_LOST, "out of memory");
				return;
			}
			b->rbuf = nb;
			b->rcap = cap;
		}
		ssize_t n = read(b->s.fd, b->rbuf + b->rlen, b->rcap - b->rlen);
		if (n == 0) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox init exited");
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox socket error");
			return;
		}
		b->rlen += (size_t)n;
		/* Complete frames: u32 length + message. */
		for (;;) {
			uint32_t len;
			if (b->rlen < 4)
				break;
			memcpy(&len, b->rbuf, 4);
			if (len == 0 || len > SBX_MAX_FRAME) {
				box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox init sent a bad frame");
				return;
			}
			if (b->rlen < 4 + (size_t)len)
				break;
			/* Aligned copy for the verifier. */
			uint8_t *msg = aligned_alloc(8, ((size_t)len + 7) & ~(size_t)7);
			if (!msg) {
				box_kill(p, b, rw_Status_SANDBOX_LOST, "out of memory");
				return;
			}
			memcpy(msg, b->rbuf + 4, len);
			memmove(b->rbuf, b->rbuf + 4 + len, b->rlen - 4 - len);
			b->rlen -= 4 + (size_t)len;
			uint64_t id = b->s.id;
			on_init_frame(p, b, msg, len);
			free(msg);
			if (!box_find(p, id))
				return; /* killed while handling */
		}
	}
}

/* ---- coordinator messages ---- */

static struct peer *peer_get(struct pool *p, const void *rid, size_t len)
{
	for (struct peer *q = p->peers; q; q = q->next)
		if (q->rid_len == len && memcmp(q->rid, rid, len) == 0)
			return q;
	if (len > sizeof(((struct peer *)0)->rid))
		return NULL;
	struct peer *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	memcpy(q->rid, rid, len);
	q->rid_len = len;
	q->lease_ms = p->cfg->lease_ms;
	q->next = p->peers;
	p->peers = q;
	return q;
}

static void send_capacity(struct pool *p, struct peer *only, bool hello)
{
	struct fb_builder *b = builder(p, 4096 + p->nprof * 256);
	fb_ref_t caps[64];
	for (size_t i = 0; i < p->nprof && i < 64; i++) {
		struct profile_state *ps = &p->prof[i];
		fb_ref_t name = fb_create_string(b, ps->sp.name);
		rw_ProfileCapacity_start(b);
		rw_ProfileCapacity_add_profile(b, name);
		rw_ProfileCapacity_add_total(b, ps->sp.max);
		rw_ProfileCapacity_add_free(b, ps->sp.max - ps->leased - ps->waiting);
		rw_ProfileCapacity_add_warm(b, ps->warm);
		caps[i] = rw_ProfileCapacity_end(b);
	}
	fb_ref_t vec = fb_create_vec_ref(b, caps, p->nprof < 64 ? p->nprof : 64);
	fb_ref_t body;
	int kind;
	if (hello) {
		fb_ref_t ident = fb_create_string(b, p->cfg->identity);
		fb_ref_t ver = fb_create_string(b, POOL_VERSION);
		rw_PoolHello_start(b);
		rw_PoolHello_add_identity(b, ident);
		rw_PoolHello_add_version(b, ver);
		rw_PoolHello_add_schema_version(b, rw_SchemaVersion_Current);
		rw_PoolHello_add_boot_id(b, p->boot_id);
		rw_PoolHello_add_capacity(b, vec);
		rw_PoolHello_add_max_inflight(b, p->cfg->max_inflight);
		body = rw_PoolHello_end(b);
		kind = rw_Body_PoolHello;
	} else {
		rw_CapacityUpdate_start(b);
		rw_CapacityUpdate_add_capacity(b, vec);
		body = rw_CapacityUpdate_end(b);
		kind = rw_Body_CapacityUpdate;
	}
	rw_Message_start(b);
	rw_Message_add_body(b, (uint8_t)kind, body);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n < 0)
		return;
	for (struct peer *q = p->peers; q; q = q->next)
		if (only ? q == only : q->hello)
			send_to(p, q, p->build, (size_t)n);
}

static void on_request(struct pool *p, struct peer *peer, uint64_t dispatch, const rw_Request_t *r,
		       const uint8_t *raw, size_t len)
{
	uint64_t rid = rw_Request_request_id(r);
	struct cached *c = cache_find(p, peer, dispatch);
	if (c) {
		pool_metrics_duplicate(p->m);
		if (c->done && c->bytes)
			send_to(p, peer, c->bytes, c->len);
		return; /* in flight: its one answer is on the way */
	}
	if (!cache_begin(p, peer, dispatch)) {
		complete(p, peer, dispatch, rid, rw_Status_INTERNAL, true, "out of memory", 0, 0);
		return;
	}
	int kind = rw_Request_action_type(r);
	pool_metrics_request(p->m, kind);
	if (p->draining) {
		complete(p, peer, dispatch, rid, rw_Status_SHUTTING_DOWN, true, "pool is shutting down", 0,
			 0);
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		complete(p, peer, dispatch, rid, rw_Status_INTERNAL, true, "out of memory", 0, 0);
		return;
	}
	j->peer = peer;
	j->dispatch = dispatch;
	j->request_id = rid;
	j->kind = kind;
	if (kind == rw_Action_Open) {
		const rw_Open_t *o = rw_Request_action_as_Open(r);
		const char *name = rw_Open_profile(o);
		int idx = -1;
		for (size_t i = 0; i < p->nprof && name; i++)
			if (strcmp(p->prof[i].sp.name, name) == 0)
				idx = (int)i;
		if (idx < 0) {
			complete(p, peer, dispatch, rid, rw_Status_UNKNOWN_PROFILE, false,
				 "no such profile on this pool", 0, 0);
			job_free(j);
			return;
		}
		struct profile_state *ps = &p->prof[idx];
		if (ps->warm_list) {
			struct box *b = ps->warm_list;
			lease_to(p, b, j);
			job_free(j);
			return;
		}
		if (start_create(p, idx) == 0 || ps->creating > ps->waiting) {
			if (ps->sp.type == SBX_NOOP && ps->warm_list) {
				lease_to(p, ps->warm_list, j);
				job_free(j);
				return;
			}
			if (ps->waiting_tail)
				ps->waiting_tail->next = j;
			else
				ps->waiting_head = j;
			ps->waiting_tail = j;
			ps->waiting++;
			return;
		}
		complete(p, peer, dispatch, rid, rw_Status_NO_CAPACITY, false,
			 "profile is at its sandbox limit", 0, 0);
		job_free(j);
		return;
	}
	uint64_t sid = 0;
	switch (kind) {
	case rw_Action_Exec:
		sid = rw_Exec_sandbox(rw_Request_action_as_Exec(r));
		j->timeout_ms = rw_Exec_timeout_ms(rw_Request_action_as_Exec(r));
		break;
	case rw_Action_PutFile:
		sid = rw_PutFile_sandbox(rw_Request_action_as_PutFile(r));
		break;
	case rw_Action_GetFile:
		sid = rw_GetFile_sandbox(rw_Request_action_as_GetFile(r));
		break;
	case rw_Action_Close:
		sid = rw_Close_sandbox(rw_Request_action_as_Close(r));
		break;
	default:
		complete(p, peer, dispatch, rid, rw_Status_BAD_REQUEST, false,
			 "action not served by this pool", 0, 0);
		job_free(j);
		return;
	}
	struct box *b = box_find(p, sid);
	if (!b || b->state != BOX_LEASED || b->owner != peer) {
		complete(p, peer, dispatch, rid, rw_Status_NOT_FOUND, false,
			 "no such sandbox for this coordinator", 0, 0);
		job_free(j);
		return;
	}
	if (kind == rw_Action_Close) {
		box_kill(p, b, rw_Status_CANCELLED, "sandbox closed");
		complete(p, peer, dispatch, rid, rw_Status_OK, false, NULL, rw_Result_Closed, 0);
		job_free(j);
		return;
	}
	j->msg = malloc(len);
	if (!j->msg) {
		complete(p, peer, dispatch, rid, rw_Status_INTERNAL, true, "out of memory", 0, 0);
		job_free(j);
		return;
	}
	memcpy(j->msg, raw, len);
	j->len = len;
	if (b->qtail)
		b->qtail->next = j;
	else
		b->qhead = j;
	b->qtail = j;
	dispatch_next(p, b);
}

static void on_cancel(struct pool *p, struct peer *peer, uint64_t target)
{
	/* A running action is stopped the only sure way: its sandbox goes. Queued ones just
	 * leave the queue. */
	for (size_t h = 0; h < NBUCKET; h++)
		for (struct box *b = p->boxes[h]; b; b = b->hnext) {
			if (b->owner != peer)
				continue;
			if (b->cur && b->cur->dispatch == target) {
				box_kill(p, b, rw_Status_CANCELLED, "cancelled by the coordinator");
				return;
			}
			for (struct job **pp = &b->qhead; *pp; pp = &(*pp)->next)
				if ((*pp)->dispatch == target) {
					struct job *j = *pp;
					*pp = j->next;
					if (b->qtail == j) {
						b->qtail = NULL;
						for (struct job *k = b->qhead; k; k = k->next)
							b->qtail = k;
					}
					job_complete(p, j, rw_Status_CANCELLED, false,
						     "cancelled by the coordinator");
					job_free(j);
					return;
				}
		}
}

static void on_message(struct pool *p, const void *rid, size_t rid_len, uint8_t *buf, size_t len)
{
	if (rw_Message_verify(buf, len) != 0) {
		pool_metrics_refused(p->m);
		return;
	}
	const rw_Message_t *m = rw_Message_root(buf);
	if (rw_Message_schema_version(m) > rw_SchemaVersion_Current) {
		pool_metrics_refused(p->m);
		return;
	}
	struct peer *peer = peer_get(p, rid, rid_len);
	if (!peer)
		return;
	peer->last_seen = now_ns();
	switch (rw_Message_body_type(m)) {
	case rw_Body_CoordinatorHello: {
		const rw_CoordinatorHello_t *h = rw_Message_body_as_CoordinatorHello(m);
		if (rw_CoordinatorHello_lease_ms(h))
			peer->lease_ms = rw_CoordinatorHello_lease_ms(h);
		peer->hello = true;
		RLOG(RLOG_INFO, "coordinator hello", "coordinator=\"%s\" lease_ms=%u",
		     rw_CoordinatorHello_identity(h) ? rw_CoordinatorHello_identity(h) : "", peer->lease_ms);
		send_capacity(p, peer, true);
		break;
	}
	case rw_Body_Heartbeat: {
		const rw_Heartbeat_t *hb = rw_Message_body_as_Heartbeat(m);
		struct fb_builder *b = builder(p, 256);
		rw_Heartbeat_start(b);
		rw_Heartbeat_add_seq(b, rw_Heartbeat_seq(hb));
		rw_Heartbeat_add_sent_ns(b, rw_Heartbeat_sent_ns(hb));
		fb_ref_t h = rw_Heartbeat_end(b);
		rw_Message_start(b);
		rw_Message_add_body(b, rw_Body_Heartbeat, h);
		ssize_t n = rw_Message_finish(b, rw_Message_end(b));
		if (n > 0)
			send_to(p, peer, p->build, (size_t)n);
		break;
	}
	case rw_Body_Request:
		on_request(p, peer, rw_Message_dispatch_id(m), rw_Message_body_as_Request(m), buf, len);
		break;
	case rw_Body_Cancel:
		on_cancel(p, peer, rw_Cancel_target_dispatch_id(rw_Message_body_as_Cancel(m)));
		break;
	default:
		pool_metrics_refused(p->m);
	}
}

static void on_router(struct pool *p)
{
	for (;;) {
		zmq_msg_t id, body;
		zmq_msg_init(&id);
		if (zmq_msg_recv(&id, p->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&id);
			return;
		}
		int more = zmq_msg_more(&id);
		zmq_msg_init(&body);
		bool ok = more && zmq_msg_recv(&body, p->router, ZMQ_DONTWAIT) >= 0;
		/* Exactly [identity][message]: anything with more parts is dropped whole. */
		bool extra = false;
		while (ok && zmq_msg_more(&body)) {
			extra = true;
			zmq_msg_close(&body);
			zmq_msg_init(&body);
			if (zmq_msg_recv(&body, p->router, 0) < 0)
				break;
		}
		if (ok && !extra) {
			size_t len = zmq_msg_size(&body);
			uint8_t *buf = aligned_alloc(8, (len + 7) & ~(size_t)7);
			if (buf) {
				memcpy(buf, zmq_msg_data(&body), len);
				on_message(p, zmq_msg_data(&id), zmq_msg_size(&id), buf, len);
				free(buf);
			}
		} else if (ok) {
			pool_metrics_refused(p->m);
		}
		zmq_msg_close(&id);
		zmq_msg_close(&body);
	}
}

/* ---- timers ---- */

static void tick(struct pool *p)
{
	uint64_t now = now_ns();
	/* Leases: a coordinator silent for its lease loses its sandboxes. */
	for (struct peer *q = p->peers; q; q = q->next) {
		if (!q->boxes || now - q->last_seen < (uint64_t)q->lease_ms * 1000000ull)
			continue;
		RLOG(RLOG_WARN, "lease expired", "sandboxes=%u lease_ms=%u", q->boxes, q->lease_ms);
		for (size_t h = 0; h < NBUCKET; h++)
			for (struct box *b = p->boxes[h], *n; b; b = n) {
				n = b->hnext;
				if (b->owner == q && b->state == BOX_LEASED) {
					pool_metrics_lease_expired(p->m);
					box_kill(p, b, rw_Status_SANDBOX_LOST, "lease expired");
				}
			}
		q->hello = false;
	}
	/* Backstop: an init that does not answer within timeout + grace is declared lost. */
	for (size_t h = 0; h < NBUCKET; h++)
		for (struct box *b = p->boxes[h], *n; b; b = n) {
			n = b->hnext;
			if (b->cur && now > b->cur_deadline)
				box_kill(p, b, rw_Status_SANDBOX_LOST, "sandbox stopped answering");
		}
	for (size_t i = 0; i < p->nprof; i++)
		refill(p, (int)i);
	cache_expire(p, now);
	if (p->capacity_dirty && now - p->last_capacity_sent > 100000000ull) {
		send_capacity(p, NULL, false);
		p->capacity_dirty = false;
		p->last_capacity_sent = now;
	}
	uint32_t warm = 0, leased = 0;
	for (size_t i = 0; i < p->nprof; i++) {
		warm += p->prof[i].warm;
		leased += p->prof[i].leased;
	}
	pool_metrics_gauges(p->m, warm, leased, p->inflight);
}

/* ---- CURVE authentication (ZAP, RFC 27) ---- */

/* Answers libzmq's authentication requests: CURVE clients whose public key is on the
 * allowlist are accepted, everything else is refused (and so delivers nothing). */
static void *zap_main(void *arg)
{
	struct pool *p = arg;
	void *s = zmq_socket(p->zctx, ZMQ_REP);
	if (!s || zmq_bind(s, "inproc://zeromq.zap.01") < 0)
		return NULL;
	for (;;) {
		zmq_msg_t part[8];
		int n = 0, more = 1;
		while (more && n < 8) {
			zmq_msg_init(&part[n]);
			if (zmq_msg_recv(&part[n], s, 0) < 0) {
				for (int i = 0; i <= n; i++)
					zmq_msg_close(&part[i]);
				zmq_close(s);
				return NULL; /* context terminated */
			}
			more = zmq_msg_more(&part[n]);
			n++;
		}
		while (more) { /* drain anything beyond what the protocol has */
			zmq_msg_t x;
			zmq_msg_init(&x);
			zmq_msg_recv(&x, s, 0);
			more = zmq_msg_more(&x);
			zmq_msg_close(&x);
		}
		bool ok = false;
		if (n >= 7 && zmq_msg_size(&part[5]) == 5 &&
		    memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 && zmq_msg_size(&part[6]) == 32)
			for (size_t i = 0; i < p->nallowed && !ok; i++)
				ok = memcmp(zmq_msg_data(&part[6]), p->allowed[i], 32) == 0;
		if (!ok)
			pool_metrics_refused(p->m);
		zmq_send(s, "1.0", 3, ZMQ_SNDMORE);
		zmq_send(s, n > 1 ? zmq_msg_data(&part[1]) : "", n > 1 ? zmq_msg_size(&part[1]) : 0,
			 ZMQ_SNDMORE);
		zmq_send(s, ok ? "200" : "400", 3, ZMQ_SNDMORE);
		zmq_send(s, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
		zmq_send(s, "", 0, ZMQ_SNDMORE);
		zmq_send(s, "", 0, 0);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&part[i]);
	}
}

static int setup_curve(struct pool *p, char *err, size_t errsz)
{
	const struct pool_cfg *cfg = p->cfg;
	if (!zmq_has("curve")) {
		snprintf(err, errsz, "CURVE keys are configured but this libzmq has no CURVE support");
		return -ENOTSUP;
	}
	p->allowed = calloc(cfg->curve_allowed_count, 32);
	if (!p->allowed)
		return -ENOMEM;
	for (unsigned i = 0; i < cfg->curve_allowed_count; i++) {
		if (!zmq_z85_decode(p->allowed[i], cfg->curve_allowed[i])) {
			snprintf(err, errsz, "curve_allowed[%u] is not valid Z85", i);
			return -EINVAL;
		}
	}
	p->nallowed = cfg->curve_allowed_count;
	if (pthread_create(&p->zap, NULL, zap_main, p))
		return -EAGAIN;
	p->zap_running = true;
	/* The handler must be bound before the first connection arrives. */
	for (int i = 0; i < 100; i++) {
		void *probe = zmq_socket(p->zctx, ZMQ_REQ);
		int rc = zmq_connect(probe, "inproc://zeromq.zap.01");
		zmq_close(probe);
		if (rc == 0)
			break;
		usleep(1000);
	}
	int one = 1;
	uint8_t secret[32];
	if (!zmq_z85_decode(secret, cfg->curve_secret_key)) {
		snprintf(err, errsz, "curve_secret_key is not valid Z85");
		return -EINVAL;
	}
	zmq_setsockopt(p->router, ZMQ_CURVE_SERVER, &one, sizeof(one));
	zmq_setsockopt(p->router, ZMQ_CURVE_SECRETKEY, secret, 32);
	zmq_setsockopt(p->router, ZMQ_ZAP_DOMAIN, "rollout", 7);
	return 0;
}

/* ---- lifecycle ---- */

/* The placement plan's pool part on this machine: an event-loop core and one sandbox cpuset
 * per NUMA node. With fewer than 4 usable cores, giving the event loop a core of its own
 * would take too much from the sandboxes: nothing is pinned then. Returns the event cpu. */
static int place(struct pool *p)
{
	struct pin_topo tp;
	if (pin_topo_load(&tp, NULL, NULL))
		return -1;
	struct pin_request rq = { 0 };
	struct pin_plan plan;
	char perr[256];
	int cpu = -1;
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) >= 4 &&
	    pin_plan_make(&tp, &rq, &plan, perr, sizeof(perr)) == 0) {
		cpu = plan.pool_event_cpu;
		for (int i = 0; i < plan.nnodes && p->rt.nnode_cpus < 8; i++) {
			if (hwloc_bitmap_iszero(plan.node_cpus[i]))
				continue;
			cpu_set_t *set = &p->rt.node_cpus[p->rt.nnode_cpus++];
			CPU_ZERO(set);
			for (int c = hwloc_bitmap_first(plan.node_cpus[i]); c >= 0 && c < CPU_SETSIZE;
			     c = hwloc_bitmap_next(plan.node_cpus[i], c))
				CPU_SET(c, set);
		}
		pin_plan_free(&plan);
	} else {
		RLOG(RLOG_INFO, "not pinned", "reason=\"fewer than 4 usable cores\"");
	}
	pin_topo_free(&tp);
	return cpu;
}

int pool_create(struct pool **out, const struct pool_cfg *cfg, char *err, size_t errsz)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	p->epfd = -1;
	p->zy.fd = -1;
	p->nprof = cfg->profiles_count;
	p->prof = calloc(p->nprof, sizeof(*p->prof));
	int rc = -ENOMEM;
	if (!p->prof)
		goto fail;
	for (size_t i = 0; i < p->nprof; i++)
		pool_profile_to_sbx(&cfg->profiles[i], &p->prof[i].sp);
	p->boot_id = now_ns() ^ ((uint64_t)getpid() << 32);
	/* Sandbox ids carry 24 bits of the boot id, so two pools (or two starts of one) do not
	 * hand out the same id to a coordinator that talks to several. */
	p->next_id = ((p->boot_id ^ (p->boot_id >> 24) ^ (p->boot_id >> 48)) & 0xffffffull) << 32;
	rc = sbx_runtime_init(&p->rt, cfg->cgroup);
	if (rc) {
		snprintf(err, errsz, "sandbox runtime: %s", rollout_strerror(rc));
		goto fail;
	}
	int event_cpu = place(p);
	struct sbx_profile *profs = calloc(p->nprof, sizeof(*profs));
	if (!profs)
		goto fail;
	for (size_t i = 0; i < p->nprof; i++)
		profs[i] = p->prof[i].sp;
	rc = zy_start(&p->zy, &p->rt, profs, p->nprof); /* before any thread exists */
	free(profs);
	if (rc) {
		snprintf(err, errsz, "zygote: %s", rollout_strerror(rc));
		goto fail;
	}
	if (event_cpu >= 0) {
		/* The event loop (and the ZeroMQ threads it starts next) on a core of its own. */
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(event_cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) == 0)
			RLOG(RLOG_INFO, "event loop pinned", "cpu=%d sandbox_cpusets=%d", event_cpu,
			     p->rt.nnode_cpus);
	}
	p->zctx = zmq_ctx_new();
	p->router = zmq_socket(p->zctx, ZMQ_ROUTER);
	int one = 1, zero = 0;
	int64_t maxmsg = (int64_t)cfg->max_message_mb << 20;
	zmq_setsockopt(p->router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
	/* A coordinator that reconnects with its routing id takes over its old connection. */
	zmq_setsockopt(p->router, ZMQ_ROUTER_HANDOVER, &one, sizeof(one));
	/* A ROUTER drops what exceeds a peer's send limit; answers must never be dropped. What
	 * is queued per coordinator is bounded by the credits it was given (max_inflight). */
	zmq_setsockopt(p->router, ZMQ_SNDHWM, &zero, sizeof(zero));
	zmq_setsockopt(p->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
	zmq_setsockopt(p->router, ZMQ_LINGER, &zero, sizeof(zero));
	int hb_ivl = 1000, hb_ttl = 3000, hb_timeout = 3000;
	zmq_setsockopt(p->router, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
	zmq_setsockopt(p->router, ZMQ_HEARTBEAT_TTL, &hb_ttl, sizeof(hb_ttl));
	zmq_setsockopt(p->router, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof(hb_timeout));
	if (cfg->curve_secret_key && (rc = setup_curve(p, err, errsz)))
		goto fail;
	if (zmq_bind(p->router, cfg->listen) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot listen on %s: %s", cfg->listen, zmq_strerror(errno));
		goto fail;
	}
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	int zfd;
	size_t zl = sizeof(zfd);
	zmq_getsockopt(p->router, ZMQ_FD, &zfd, &zl);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_ROUTER };
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, zfd, &ev);
	struct epoll_event evz = { .events = EPOLLIN, .data.u64 = EV_ZYGOTE };
	epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->zy.fd, &evz);
	rc = pool_metrics_start(&p->m, cfg->metrics, cfg->identity);
	if (rc) {
		snprintf(err, errsz, "metrics endpoint %s: %s", cfg->metrics, rollout_strerror(rc));
		goto fail;
	}
	*out = p;
	return 0;
fail:
	pool_destroy(p);
	return rc;
}

int pool_run(struct pool *p, volatile int *stop)
{
	RLOG(RLOG_INFO, "pool serving", "listen=%s profiles=%zu cgroups=v%d", p->cfg->listen, p->nprof,
	     p->rt.cgroups ? p->rt.cg.version : 0);
	uint64_t drain_until = 0, last_tick = 0;
	struct epoll_event evs[64];
	for (;;) {
		if (*stop && !p->draining) {
			p->draining = true;
			drain_until = now_ns() + (uint64_t)DRAIN_MS * 1000000ull;
			RLOG(RLOG_INFO, "draining", "inflight=%u", p->inflight);
			for (size_t i = 0; i < p->nprof; i++) {
				struct profile_state *ps = &p->prof[i];
				for (struct job *j = ps->waiting_head, *n; j; j = n) {
					n = j->next;
					job_complete(p, j, rw_Status_SHUTTING_DOWN, true,
						     "pool is shutting down");
					job_free(j);
				}
				ps->waiting_head = ps->waiting_tail = NULL;
				ps->waiting = 0;
			}
		}
		if (p->draining && (p->inflight == 0 || now_ns() > drain_until))
			break;
		int zev = 0;
		size_t zl = sizeof(zev);
		zmq_getsockopt(p->router, ZMQ_EVENTS, &zev, &zl);
		int n = epoll_wait(p->epfd, evs, 64, (zev & ZMQ_POLLIN) ? 0 : TICK_MS);
		for (int i = 0; i < n; i++) {
			/* Events carry ids, not pointers: a sandbox killed earlier in this batch is
			 * simply not found. */
			uint64_t id = evs[i].data.u64;
			if (id == EV_ROUTER)
				continue; /* drained below */
			if (id == EV_ZYGOTE) {
				on_zygote(p);
				continue;
			}
			struct box *b = box_find(p, id);
			if (b)
				on_box_readable(p, b);
		}
		on_router(p);
		uint64_t now = now_ns();
		if (now - last_tick >= TICK_MS * 1000000ull) {
			tick(p);
			last_tick = now;
		}
	}
	RLOG(RLOG_INFO, "pool stopped", "inflight=%u", p->inflight);
	return 0;
}

void pool_destroy(struct pool *p)
{
	if (!p)
		return;
	for (size_t h = 0; h < NBUCKET; h++)
		while (p->boxes[h])
			box_kill(p, p->boxes[h], rw_Status_SHUTTING_DOWN, "pool is shutting down");
	zy_stop(&p->zy);
	if (p->rt.cgroups)
		cg_fini(&p->rt.cg); /* the parent group goes too when nothing is left in it */
	if (p->router)
		zmq_close(p->router);
	if (p->zctx)
		zmq_ctx_shutdown(p->zctx); /* ends the ZAP thread's wait */
	if (p->zap_running)
		pthread_join(p->zap, NULL);
	if (p->zctx)
		zmq_ctx_term(p->zctx);
	free(p->allowed);
	if (p->epfd >= 0)
		close(p->epfd);
	pool_metrics_stop(p->m);
	while (p->cache_head) {
		struct cached *c = p->cache_head;
		p->cache_head = c->fnext;
		cache_unlink(p, c);
	}
	free(p->cache);
	for (struct peer *q = p->peers, *n; q; q = n) {
		n = q->next;
		free(q);
	}
	sbx_runtime_free(&p->rt);
	free(p->build);
	free(p->prof);
	free(p);
}
