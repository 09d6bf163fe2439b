/* A trainer process for the history checker (tests/history/history.py). It drives rolloutd
 * through librollout as a real trainer would and logs every submit, completion and
 * connection error to an append-only file that the checker reads back:
 *
 *   S rid action sandbox t_ms     a request is in the ring (action: open:PROFILE, exec, step,
 *                                 read, close, big, bad:KIND)
 *   C rid status infra t_ms       a completion arrived (status by name)
 *   E error t_ms                  a connection error: every request still pending is excused
 *   X rid sandbox                 a step id read back from the sandbox's /tmp/steps
 *   R rid sandbox n               the read request rid returned n step ids
 *   Q t_ms                        clean end (after the drain)
 *
 * Modes:
 *   run   noop sandboxes with pipelined execs (the volume) and real sandboxes whose steps
 *         append their request id to /tmp/steps, read back at the end of each episode.
 *         With --big-bytes N, one more sandbox is opened and SIGUSR1 makes it run one exec
 *         with N bytes of stdout (bigger than rolloutd's max_record), then close.
 *         SIGTERM stops submitting; pending requests are drained for --drain-ms.
 *   burst opens --count real sandboxes at once, holds them until every open has answered,
 *         then closes them.
 *   raw   attaches without librollout (shm + wire directly) and writes malformed records
 *         into its submission ring between valid ones. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attach_proto.h"
#include "ring.h"
#include "rollout/rollout.h"
#include "rollout_wire.h"

static atomic_int stop_flag, big_flag;

static void on_term(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&big_flag, 1);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct {
	const char *socket, *log, *name, *mode;
	int noop_slots, real_slots, depth, steps, count, drain_ms, big_bytes;
	double rate; /* noop execs per second, 0: as fast as possible */
	uint64_t id_base;
} opt = { .name = "c",
	  .mode = "run",
	  .noop_slots = 32,
	  .real_slots = 4,
	  .depth = 8,
	  .steps = 5,
	  .count = 80,
	  .drain_ms = 15000 };

static FILE *logf_;

#define LOG(...) fprintf(logf_, __VA_ARGS__)

/* ---- request table: rid -> (slot, what); open addressing, rids are never reused ---- */

enum what { W_OPEN, W_EXEC, W_STEP, W_READ, W_CLOSE, W_BIG };
static const char *what_name[] = { "open", "exec", "step", "read", "close", "big" };

#define TBL (1u << 16)
static struct pend {
	uint64_t rid; /* 0: free */
	int slot;
	enum what w;
} tbl[TBL];
static unsigned npend;
static uint64_t next_rid;

static struct pend *tbl_find(uint64_t rid)
{
	for (unsigned i = 0; i < TBL; i++) {
		struct pend *p = &tbl[(rid + i) & (TBL - 1)];
		if (p->rid == rid)
			return p;
		if (!p->rid)
			return NULL;
	}
	return NULL;
}

/* Deleting from linear probing: re-insert the rest of the cluster. */
static void tbl_del(struct pend *p)
{
	unsigned i = (unsigned)(p - tbl);
	p->rid = 0;
	npend--;
	for (unsigned j = (i + 1) & (TBL - 1); tbl[j].rid; j = (j + 1) & (TBL - 1)) {
		struct pend e = tbl[j];
		tbl[j].rid = 0;
		unsigned k = (unsigned)e.rid & (TBL - 1);
		while (tbl[k].rid)
			k = (k + 1) & (TBL - 1);
		tbl[k] = e;
	}
}

static void tbl_add(uint64_t rid, int slot, enum what w)
{
	unsigned k = (unsigned)rid & (TBL - 1);
	while (tbl[k].rid)
		k = (k + 1) & (TBL - 1);
	tbl[k] = (struct pend){ .rid = rid, .slot = slot, .w = w };
	npend++;
}

static void tbl_clear(void)
{
	memset(tbl, 0, sizeof(tbl));
	npend = 0;
}

/* ---- slots: one sandbox episode each ---- */

enum kind { K_NOOP, K_REAL, K_BIG };
enum state { IDLE, OPENING, RUN, CLOSING, DONE };

struct slot {
	enum kind k;
	enum state st;
	uint64_t sb;
	int sent, done, inflight; /* execs of this episode */
	bool lost;                /* a step did not complete OK: the sandbox is not trusted */
	uint64_t retry_at;
};

static struct slot *slots;
static int nslots;
static rollout_client *C;
static uint64_t noop_sent, t_start;
static bool big_wanted; /* SIGUSR1 came: the big slot submits its exec */

/* Submits; returns 0, -EAGAIN (ring full) or another error (treated as a connection error). */
static int submit(int slot, enum what w, const char *profile, uint64_t sb, const char *shell, uint32_t cap)
{
	uint64_t rid = next_rid;
	int rc;
	if (npend > TBL / 4 * 3)
		return -EAGAIN; /* requests never answered fill the table: stop adding, keep reading */
	if (w == W_OPEN) {
		rc = rollout_open(C, rid, profile, 0);
	} else if (w == W_CLOSE) {
		rc = rollout_close(C, rid, sb);
	} else {
		struct rollout_exec e = { .shell = shell, .output_cap = cap, .timeout_ms = 20000 };
		rc = rollout_exec(C, rid, sb, &e, 0);
	}
	if (rc)
		return rc;
	next_rid++;
	tbl_add(rid, slot, w);
	if (w == W_OPEN)
		LOG("S %" PRIu64 " open:%s 0 %" PRIu64 "\n", rid, profile, now_ms());
	else
		LOG("S %" PRIu64 " %s %" PRIu64 " %" PRIu64 "\n", rid, what_name[w], sb, now_ms());
	return 0;
}

static const char *profile_of(const struct slot *s)
{
	return s->k == K_NOOP ? "noop" : "default";
}

/* Moves every slot forward as far as the ring and the rate allow. */
static int fill(void)
{
	uint64_t now = now_ms();
	double allowed = opt.rate > 0 ? opt.rate * (double)(now - t_start) / 1000.0 : 1e18;
	for (int i = 0; i < nslots; i++) {
		struct slot *s = &slots[i];
		int rc = 0;
		if (s->st == IDLE && !atomic_load(&stop_flag) && now >= s->retry_at) {
			if ((rc = submit(i, W_OPEN, profile_of(s), 0, NULL, 0)) == 0)
				s->st = OPENING;
		} else if (s->st == RUN && s->k == K_NOOP) {
			while (s->sent < 64 && s->inflight < opt.depth && (double)noop_sent < allowed &&
			       !atomic_load(&stop_flag)) {
				if ((rc = submit(i, W_EXEC, NULL, s->sb, "true", 0)))
					break;
				s->sent++;
				s->inflight++;
				noop_sent++;
			}
			if (!rc && s->inflight == 0 && (s->sent >= 64 || atomic_load(&stop_flag)))
				if ((rc = submit(i, W_CLOSE, NULL, s->sb, NULL, 0)) == 0)
					s->st = CLOSING;
		} else if (s->st == RUN && s->k == K_REAL) {
			/* All steps and the read-back pipelined: the pool runs them in order. An
			 * episode not started when the trainer is told to stop is only closed, so
			 * every request submitted gets the whole drain time. */
			if (s->sent == 0 && atomic_load(&stop_flag))
				s->sent = opt.steps + 1;
			while (s->sent < opt.steps + 1) {
				char cmd[64];
				bool read = s->sent == opt.steps;
				snprintf(cmd, sizeof(cmd), "echo %" PRIu64 " >> /tmp/steps", next_rid);
				if ((rc = submit(i, read ? W_READ : W_STEP, NULL, s->sb,
						 read ? "cat /tmp/steps" : cmd, 0)))
					break;
				s->sent++;
				s->inflight++;
			}
			if (!rc && s->inflight == 0 && s->sent == opt.steps + 1)
				if ((rc = submit(i, W_CLOSE, NULL, s->sb, NULL, 0)) == 0)
					s->st = CLOSING;
		} else if (s->st == RUN && s->k == K_BIG) {
			/* Its sandbox is open from the start, so the exec goes out the moment the
			 * signal comes. */
			char cmd[64];
			snprintf(cmd, sizeof(cmd), "head -c %d /dev/zero", opt.big_bytes);
			if (s->sent == 0 && big_wanted &&
			    (rc = submit(i, W_BIG, NULL, s->sb, cmd, (uint32_t)opt.big_bytes)) == 0) {
				s->sent = 1;
				s->inflight = 1;
				big_wanted = false;
			}
			if (!rc && ((s->sent && !s->inflight) || (!s->sent && atomic_load(&stop_flag))))
				if ((rc = submit(i, W_CLOSE, NULL, s->sb, NULL, 0)) == 0)
					s->st = CLOSING;
		}
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
	}
	return 0;
}

static void on_completion(const struct rollout_completion *c)
{
	const char *st = rollout_status_name(c->status);
	LOG("C %" PRIu64 " %s %d %" PRIu64 "\n", c->request_id, st, c->infra_failed ? 1 : 0, now_ms());
	struct pend *p = tbl_find(c->request_id);
	if (!p)
		return; /* the checker reports it: duplicated or never sent */
	struct slot *s = &slots[p->slot];
	enum what w = p->w;
	uint64_t rid = p->rid;
	tbl_del(p);
	switch (w) {
	case W_OPEN:
		if (c->status == 0) {
			s->st = RUN;
			s->sb = c->sandbox;
			s->sent = s->done = s->inflight = 0;
			s->lost = false;
		} else {
			s->st = IDLE; /* NO_CAPACITY, UNAVAILABLE, ...: try again a little later */
			s->retry_at = now_ms() + 50;
		}
		break;
	case W_READ:
		if (c->status == 0) {
			int n = 0;
			const char *d = (const char *)c->stdout_data, *end = d + c->stdout_len;
			while (d < end) {
				char *e;
				unsigned long long v = strtoull(d, &e, 10);
				if (e == d)
					break;
				LOG("X %llu %" PRIu64 "\n", v, s->sb);
				n++;
				d = e;
				while (d < end && (*d == '\n' || *d == ' '))
					d++;
			}
			LOG("R %" PRIu64 " %" PRIu64 " %d\n", rid, s->sb, n);
		}
		/* fall through */
	case W_EXEC:
	case W_STEP:
	case W_BIG:
		s->inflight--;
		s->done++;
		if (c->status != 0)
			s->lost = true;
		break;
	case W_CLOSE:
		s->st = s->k == K_BIG ? DONE : IDLE;
		break;
	}
}

/* rolloutd went away (or the channel broke): everything pending is excused, start over. */
static int reconnect(int why)
{
	LOG("E %s %" PRIu64 "\n", rollout_strerror(why), now_ms());
	fflush(logf_);
	rollout_disconnect(C);
	C = NULL;
	tbl_clear();
	for (int i = 0; i < nslots; i++)
		if (slots[i].st != DONE)
			slots[i] = (struct slot){ .k = slots[i].k, .st = IDLE };
	struct rollout_connect_opts o = { .socket_path = opt.socket, .gpu = -1, .name = opt.name };
	for (uint64_t end = now_ms() + 30000; now_ms() < end;) {
		if (atomic_load(&stop_flag))
			return -1;
		if (rollout_connect(&o, &C) == 0) {
			LOG("K %" PRIu64 "\n", now_ms());
			return 0;
		}
		usleep(50000);
	}
	return -1;
}

static int run(void)
{
	nslots = opt.noop_slots + opt.real_slots + (opt.big_bytes > 0);
	slots = calloc((size_t)nslots, sizeof(*slots));
	for (int i = 0; i < nslots; i++)
		slots[i].k = i < opt.noop_slots                    ? K_NOOP
			     : i < opt.noop_slots + opt.real_slots ? K_REAL
								   : K_BIG;
	struct rollout_connect_opts o = { .socket_path = opt.socket, .gpu = -1, .name = opt.name };
	int rc = rollout_connect(&o, &C);
	if (rc) {
		fprintf(stderr, "%s: connect: %s\n", opt.name, rollout_strerror(rc));
		return 2;
	}
	t_start = now_ms();
	uint64_t drain_end = 0;
	for (;;) {
		if (atomic_exchange(&big_flag, 0))
			big_wanted = true;
		if ((rc = fill())) {
			if (reconnect(rc))
				break;
			continue;
		}
		if (atomic_load(&stop_flag)) {
			if (!drain_end)
				drain_end = now_ms() + (uint64_t)opt.drain_ms;
			if (npend == 0 || now_ms() > drain_end)
				break;
		}
		rollout_flush(C);
		struct rollout_completion c;
		int n;
		while ((n = rollout_next(C, &c)) == 1)
			on_completion(&c);
		fflush(logf_);
		if (n < 0) {
			if (reconnect(n))
				break;
			continue;
		}
		rc = rollout_wait(C, 20);
		if (rc && rc != -ETIMEDOUT && reconnect(rc))
			break;
	}
	LOG("Q %" PRIu64 " %u\n", now_ms(), npend);
	fflush(logf_);
	if (C)
		rollout_disconnect(C);
	free(slots);
	return 0;
}

/* ---- burst: --count opens at once (ten times the warm count) ---- */

static int burst(void)
{
	struct rollout_connect_opts o = { .socket_path = opt.socket, .gpu = -1, .name = opt.name };
	int rc = rollout_connect(&o, &C);
	if (rc) {
		fprintf(stderr, "%s: connect: %s\n", opt.name, rollout_strerror(rc));
		return 2;
	}
	unsigned pending = 0;
	for (int i = 0; i < opt.count; i++) {
		uint64_t rid = next_rid++;
		while ((rc = rollout_open(C, rid, "default", 0)) == -EAGAIN)
			rollout_wait_space(C, 4096, 100);
		if (rc)
			break;
		LOG("S %" PRIu64 " open:default 0 %" PRIu64 "\n", rid, now_ms());
		pending++;
	}
	rollout_flush(C);
	fflush(logf_);
	/* Every sandbox is held until all opens have answered, then all are closed. */
	uint64_t *held = calloc((size_t)opt.count, sizeof(*held));
	int nheld = 0, opens_left = (int)pending;
	bool closing = false;
	/* Generous: a loaded 2-core box creates sandboxes slowly. Giving up detaches with the
	 * count of what was still pending (the checker reports those as abandoned). */
	uint64_t end = now_ms() + 120000;
	while (pending && now_ms() < end && held) {
		struct rollout_completion c;
		int n;
		while ((n = rollout_next(C, &c)) == 1) {
			LOG("C %" PRIu64 " %s %d %" PRIu64 "\n", c.request_id, rollout_status_name(c.status),
			    c.infra_failed ? 1 : 0, now_ms());
			pending--;
			if (c.request_id < opt.id_base + (uint64_t)opt.count) {
				opens_left--;
				if (c.status == 0)
					held[nheld++] = c.sandbox;
			}
		}
		if (!closing && opens_left == 0) {
			closing = true;
			for (int i = 0; i < nheld; i++) {
				uint64_t rid = next_rid++;
				while ((rc = rollout_close(C, rid, held[i])) == -EAGAIN)
					rollout_wait_space(C, 4096, 100);
				if (rc)
					break;
				LOG("S %" PRIu64 " close %" PRIu64 " %" PRIu64 "\n", rid, held[i], now_ms());
				pending++;
			}
			rollout_flush(C);
		}
		fflush(logf_);
		rc = n < 0 ? n : rollout_wait(C, 100);
		if (rc && rc != -ETIMEDOUT) {
			LOG("E %s %" PRIu64 "\n", rollout_strerror(rc), now_ms());
			break;
		}
	}
	free(held);
	LOG("Q %" PRIu64 " %u\n", now_ms(), pending);
	fflush(logf_);
	rollout_disconnect(C);
	return 0;
}

/* ---- raw: our own attach, malformed records between valid ones ---- */

struct raw {
	int sock, sq_wake, cq_wake;
	struct shm_seg seg;
	struct shm_writer w;
	struct shm_reader r;
};

static int raw_connect(struct raw *x)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", opt.socket);
	x->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (x->sock < 0 || connect(x->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	struct rollout_attach_req req = { .magic = ROLLOUT_ATTACH_MAGIC,
					  .version = ROLLOUT_ATTACH_VERSION,
					  .type = ROLLOUT_ATTACH_REQ,
					  .gpu = -1,
					  .pid = (uint32_t)getpid() };
	snprintf(req.name, sizeof(req.name), "%s", opt.name);
	if (send(x->sock, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req))
		return -errno;
	struct rollout_attach_resp resp;
	int fds[ROLLOUT_ATTACH_MAX_FDS];
	unsigned nfds = 0;
	int rc = shm_recv_fds(x->sock, &resp, sizeof(resp), fds, ROLLOUT_ATTACH_MAX_FDS, &nfds);
	if (rc != (int)sizeof(resp) || resp.status)
		return rc < 0 ? rc : -EPROTO;
	int segfd = -1;
	x->sq_wake = x->cq_wake = -1;
	for (unsigned i = 0; i < nfds; i++) {
		if (resp.fd_roles[i] == ROLLOUT_FD_SEGMENT)
			segfd = fds[i];
		else if (resp.fd_roles[i] == ROLLOUT_FD_SQ_WAKE)
			x->sq_wake = fds[i];
		else if (resp.fd_roles[i] == ROLLOUT_FD_CQ_WAKE)
			x->cq_wake = fds[i];
		else
			close(fds[i]);
	}
	if (segfd < 0 || (rc = shm_seg_attach(&x->seg, segfd, resp.segment_bytes)))
		return segfd < 0 ? -EPROTO : rc;
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = x->sock;
	wc.wake_fd = x->sq_wake;
	if ((rc = shm_writer_init(&x->w, &x->seg, SHM_SQ, &wc)))
		return rc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = x->sock;
	wc.wait_fd = x->cq_wake;
	return shm_reader_init(&x->r, &x->seg, SHM_CQ, &wc);
}

enum bad {
	B_NONE,
	B_RANDOM,
	B_TRUNCATED,
	B_ROOT_OFFSET,
	B_COMPLETION_BODY,
	B_NO_DISPATCH_ID,
	B_NO_ACTION,
	B_SCHEMA_VERSION,
	B_COUNT
};
static const char *bad_name[] = { "none",        "random",          "truncated",
				  "root_offset", "completion_body", "no_dispatch_id",
				  "no_action",   "schema_version" };

/* Builds a record (a valid noop open when kind is B_NONE) into buf; returns its length. */
static size_t build(uint8_t *buf, size_t cap, uint64_t rid, enum bad kind)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t body;
	uint8_t type = rw_Body_Request;
	if (kind == B_COMPLETION_BODY) {
		rw_Completion_start(&b);
		rw_Completion_add_request_id(&b, rid);
		body = rw_Completion_end(&b);
		type = rw_Body_Completion;
	} else {
		fb_ref_t p = fb_create_string(&b, "noop");
		rw_Open_start(&b);
		rw_Open_add_profile(&b, p);
		fb_ref_t act = rw_Open_end(&b);
		rw_Request_start(&b);
		rw_Request_add_request_id(&b, rid);
		if (kind != B_NO_ACTION)
			rw_Request_add_action(&b, rw_Action_Open, act);
		body = rw_Request_end(&b);
	}
	rw_Message_start(&b);
	if (kind != B_NO_DISPATCH_ID)
		rw_Message_add_dispatch_id(&b, UINT64_MAX);
	if (kind == B_SCHEMA_VERSION)
		rw_Message_add_schema_version(&b, 99);
	rw_Message_add_body(&b, type, body);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	if (n <= 0)
		return 0;
	switch (kind) {
	case B_RANDOM:
		for (ssize_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(rand() & 0xff);
		break;
	case B_TRUNCATED:
		n /= 2;
		break;
	case B_ROOT_OFFSET:
		buf[0] = 0xf0, buf[1] = 0xff, buf[2] = 0xff, buf[3] = 0x7f;
		break;
	default:
		break;
	}
	return (size_t)n;
}

static int raw(void)
{
	struct raw x = { .sock = -1 };
	int rc = raw_connect(&x);
	if (rc) {
		fprintf(stderr, "%s: raw attach: %s\n", opt.name, rollout_strerror(rc));
		return 2;
	}
	uint8_t buf[1024];
	unsigned valid = 0, pending = 0;
	for (int round = 0; round < opt.count; round++) {
		for (int k = 0; k < B_COUNT; k++) {
			uint64_t rid = next_rid++;
			size_t n = build(buf, sizeof(buf), rid, (enum bad)k);
			if (!n || shm_writer_send(&x.w, buf, (uint32_t)n) < 0)
				continue;
			if (k == B_NONE)
				LOG("S %" PRIu64 " open:noop 0 %" PRIu64 "\n", rid, now_ms()), valid++;
			else
				LOG("S %" PRIu64 " bad:%s 0 %" PRIu64 "\n", rid, bad_name[k], now_ms());
			pending++;
		}
	}
	fflush(logf_);
	/* Valid ones must all come back; give the malformed ones a few seconds more. */
	unsigned got_valid = 0;
	uint64_t end = now_ms() + 5000;
	while (now_ms() < end && pending) {
		const void *d;
		uint32_t len;
		rc = shm_reader_peek(&x.r, &d, &len);
		if (rc == -EAGAIN) {
			rc = shm_reader_wait(&x.r, 200);
			if (rc && rc != -ETIMEDOUT) {
				LOG("E %s %" PRIu64 "\n", rollout_strerror(rc), now_ms());
				break;
			}
			continue;
		}
		if (rc || rw_Message_verify(d, len)) {
			LOG("E %s %" PRIu64 "\n", rc ? rollout_strerror(rc) : "bad completion record",
			    now_ms());
			break;
		}
		const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(d));
		if (k) {
			uint64_t rid = rw_Completion_request_id(k);
			LOG("C %" PRIu64 " %s %d %" PRIu64 "\n", rid,
			    rollout_status_name(rw_Completion_status(k)),
			    rw_Completion_infra_failed(k) ? 1 : 0, now_ms());
			pending--;
			if (rid < opt.id_base + (uint64_t)opt.count * B_COUNT &&
			    (rid - opt.id_base) % B_COUNT == 0 && ++got_valid == valid)
				end = now_ms() + 3000 < end ? now_ms() + 3000 : end;
		}
		shm_reader_release(&x.r);
	}
	LOG("Q %" PRIu64 " %u\n", now_ms(), pending);
	fflush(logf_);
	struct rollout_detach_req dq = { .magic = ROLLOUT_ATTACH_MAGIC,
					 .version = ROLLOUT_ATTACH_VERSION,
					 .type = ROLLOUT_DETACH_REQ };
	send(x.sock, &dq, sizeof(dq), MSG_NOSIGNAL | MSG_DONTWAIT);
	shm_reader_destroy(&x.r);
	shm_seg_close(&x.seg);
	close(x.sock);
	if (x.sq_wake >= 0)
		close(x.sq_wake);
	if (x.cq_wake >= 0)
		close(x.cq_wake);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", 1, 0, 's' },    { "log", 1, 0, 'l' },     { "name", 1, 0, 'n' },
		{ "mode", 1, 0, 'm' },      { "noop", 1, 0, 'N' },    { "real", 1, 0, 'R' },
		{ "depth", 1, 0, 'd' },     { "steps", 1, 0, 'k' },   { "count", 1, 0, 'c' },
		{ "rate", 1, 0, 'r' },      { "id-base", 1, 0, 'b' }, { "drain-ms", 1, 0, 'D' },
		{ "big-bytes", 1, 0, 'B' }, { 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.socket = optarg;
			break;
		case 'l':
			opt.log = optarg;
			break;
		case 'n':
			opt.name = optarg;
			break;
		case 'm':
			opt.mode = optarg;
			break;
		case 'N':
			opt.noop_slots = atoi(optarg);
			break;
		case 'R':
			opt.real_slots = atoi(optarg);
			break;
		case 'd':
			opt.depth = atoi(optarg);
			break;
		case 'k':
			opt.steps = atoi(optarg);
			break;
		case 'c':
			opt.count = atoi(optarg);
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'b':
			opt.id_base = strtoull(optarg, NULL, 0);
			break;
		case 'D':
			opt.drain_ms = atoi(optarg);
			break;
		case 'B':
			opt.big_bytes = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: history_trainer --socket S --log F [--mode run|burst|raw] ...\n");
			return 2;
		}
	}
	if (!opt.socket || !opt.log) {
		fprintf(stderr, "history_trainer: --socket and --log are required\n");
		return 2;
	}
	logf_ = fopen(opt.log, "a");
	if (!logf_) {
		perror(opt.log);
		return 2;
	}
	setvbuf(logf_, NULL, _IOFBF, 1 << 16);
	next_rid = opt.id_base ? opt.id_base : 1;
	opt.id_base = next_rid;
	srand((unsigned)getpid());
	struct sigaction sa = { .sa_handler = on_term };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int rc = !strcmp(opt.mode, "raw") ? raw() : !strcmp(opt.mode, "burst") ? burst() : run();
	fclose(logf_);
	return rc;
}
