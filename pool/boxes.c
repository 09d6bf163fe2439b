/* The sandbox table and warm refill (see boxes.h). A creation is a box in BOX_CREATING
 * with a request to the zygote; the zygote's answer (or the creation deadline) ends it:
 * the box goes to the oldest waiting open, or to the warm list. */
#include "boxes.h"
#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "action.h"
#include "log.h"
#include "proto.h"
#include "rollout/error.h"
#include "util.h"

static size_t bucket(uint64_t id)
{
	return (size_t)(rollout__mix64(id) % POOL_BOX_BUCKETS);
}

struct box *box_find(struct pool *p, uint64_t id)
{
	for (struct box *b = p->boxes[bucket(id)]; b; b = b->hnext)
		if (b->s.id == id)
			return b;
	return NULL;
}

static void unlink_box(struct pool *p, struct box *b)
{
	struct box **pp = &p->boxes[bucket(b->s.id)];
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

static void creating_remove(struct pool *p, struct box *b)
{
	struct box **pp = &p->creating_head;
	while (*pp && *pp != b)
		pp = &(*pp)->cnext;
	if (*pp)
		*pp = b->cnext;
	b->cnext = NULL;
}

static void creating_append(struct pool *p, struct box *b)
{
	struct box **pp = &p->creating_head;
	while (*pp)
		pp = &(*pp)->cnext;
	*pp = b;
	b->cnext = NULL;
}

/* Asks the zygote, and watches its socket for room when the request had to wait. */
static int zygote_request(struct pool *p, uint32_t op, uint32_t profile, uint64_t id, const char *snap)
{
	int rc = snap && snap[0] ? zy_request_from(&p->zy, profile, id, snap)
				 : zy_request(&p->zy, op, profile, id);
	if (rc == 1 && !p->zy_out) {
		if (loop_mod(p->loop, p->zy.fd, EPOLLIN | EPOLLOUT) == 0)
			p->zy_out = true;
		rc = 0;
	}
	if (rc < 0 && rc != -ENOMEM)
		pool__fail(p, rc, "the zygote is gone");
	return rc < 0 ? rc : 0;
}

/* Completes a job of a sandbox that ends; a lost sandbox's answers name its checkpoint. */
static void end_job(struct pool *p, struct box *b, struct job *j, int status, bool infra, const char *why)
{
	if (status == rw_Status_SANDBOX_LOST && b->checkpoint[0])
		proto_job_done_checkpoint(p, j, status, infra, why, b->checkpoint, b->checkpoint_rid);
	else
		proto_job_done(p, j, status, infra, why);
}

void box_kill(struct pool *p, struct box *b, int cur_status, int rest_status, bool infra, const char *why)
{
	struct profile_state *ps = &p->prof[b->profile];
	if (b->for_open) {
		/* Made for one open that never got it. */
		struct job *j = b->for_open;
		b->for_open = NULL;
		proto_job_done(p, j,
			       cur_status == rw_Status_CANCELLED ? rw_Status_CANCELLED : rw_Status_INTERNAL,
			       infra, why);
	}
	if (b->cur) {
		struct job *j = b->cur;
		b->cur = NULL;
		p->inflight--;
		end_job(p, b, j, cur_status, infra, why);
	}
	free(b->held);
	b->held = NULL;
	for (struct job *j = b->qhead, *n; j; j = n) {
		n = j->next;
		end_job(p, b, j, rest_status, infra, why);
	}
	b->qhead = b->qtail = NULL;
	if (b->state == BOX_WARM)
		warm_remove(ps, b);
	if (b->state == BOX_LEASED) {
		ps->leased--;
		if (b->owner)
			b->owner->boxes--;
	}
	if (b->state == BOX_CREATING && ps->sp.type != SBX_NOOP) {
		ps->creating--;
		p->zy_inflight--;
		creating_remove(p, b);
	}
	ps->total--;
	if (b->watched)
		loop_del(p->loop, b->s.fd);
	frame_fini(&b->io);
	if (b->s.fd >= 0)
		close(b->s.fd);
	/* A creation the zygote has not answered is destroyed when it arrives (or here). */
	if (ps->sp.type != SBX_NOOP)
		zygote_request(p, ZY_DESTROY, 0, b->s.id, NULL);
	unlink_box(p, b);
	free(b);
	p->capacity_dirty = true;
	pool_metrics_sandboxes(p->m, -1);
}

void box_each(struct pool *p, void (*fn)(struct pool *p, struct box *b, void *arg), void *arg)
{
	for (size_t h = 0; h < POOL_BOX_BUCKETS; h++)
		for (struct box *b = p->boxes[h], *n; b; b = n) {
			n = b->hnext;
			fn(p, b, arg);
		}
}

static void kill_if_owned(struct pool *p, struct box *b, void *arg)
{
	if (b->owner == arg && b->state == BOX_LEASED) {
		pool_metrics_lease_expired(p->m);
		box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true, "lease expired");
	}
}

void box_kill_owned(struct pool *p, struct peer *peer)
{
	box_each(p, kill_if_owned, peer);
}

void box_kill_all(struct pool *p, int status, const char *why)
{
	for (size_t h = 0; h < POOL_BOX_BUCKETS; h++)
		while (p->boxes[h])
			box_kill(p, p->boxes[h], status, status, true, why);
}

static void lease_to(struct pool *p, struct box *b, struct job *open)
{
	struct profile_state *ps = &p->prof[b->profile];
	b->checkpoint_every = open->checkpoint_every;
	if (b->state == BOX_WARM)
		warm_remove(ps, b);
	b->state = BOX_LEASED;
	b->owner = open->peer;
	open->peer->boxes++;
	ps->leased++;
	p->capacity_dirty = true;
	proto_complete(p, open->peer, open->dispatch, open->request_id, rw_Status_OK, false, NULL,
		       rw_Result_Opened, b->s.id);
	proto_job_free(p, open);
}

bool box_claim(struct pool *p, int profile, struct job *open)
{
	struct box *b = p->prof[profile].warm_list;
	if (!b)
		return false;
	lease_to(p, b, open);
	return true;
}

bool box_can_wait(const struct pool *p, int profile)
{
	const struct profile_state *ps = &p->prof[profile];
	/* Sandboxes not yet made (or being made) for this profile: each serves one open. */
	uint32_t coming = ps->sp.max - (ps->total - ps->creating);
	return ps->waiting < coming;
}

/* A new sandbox is ready: the oldest waiting open gets it, or it joins the warm list. */
static void box_ready(struct pool *p, struct box *b)
{
	struct profile_state *ps = &p->prof[b->profile];
	if (b->for_open) {
		struct job *j = b->for_open;
		b->for_open = NULL;
		lease_to(p, b, j);
		return;
	}
	if (ps->waiting_head) {
		struct job *j = ps->waiting_head;
		ps->waiting_head = j->next;
		if (!ps->waiting_head)
			ps->waiting_tail = NULL;
		ps->waiting--;
		lease_to(p, b, j);
		return;
	}
	b->state = BOX_WARM;
	b->wnext = ps->warm_list;
	ps->warm_list = b;
	ps->warm++;
	p->capacity_dirty = true;
}

static int start_create(struct pool *p, int profile, struct job *for_open)
{
	struct profile_state *ps = &p->prof[profile];
	struct box *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (for_open) {
		b->for_open = for_open;
		snprintf(b->from, sizeof(b->from), "%s", for_open->snap);
	}
	b->pool = p;
	b->s.id = ++p->next_id;
	b->s.fd = b->s.pidfd = -1;
	b->profile = profile;
	b->state = BOX_CREATING;
	frame_init(&b->io, -1, SBX_MAX_FRAME);
	if (ps->sp.type != SBX_NOOP) {
		int rc = zygote_request(p, ZY_CREATE, (uint32_t)profile, b->s.id, b->from);
		if (rc) {
			free(b);
			return rc;
		}
		uint64_t now = rollout__now_ns();
		b->deadline = now + ROLLOUT_MS(p->cfg->create_timeout_ms);
		if (!p->creating_head)
			p->zy_progress = now; /* the zygote had nothing to do until now */
		ps->creating++;
		p->zy_inflight++;
		creating_append(p, b);
	}
	ps->total++;
	size_t h = bucket(b->s.id);
	b->hnext = p->boxes[h];
	p->boxes[h] = b;
	pool_metrics_sandboxes(p->m, 1);
	if (ps->sp.type == SBX_NOOP)
		box_ready(p, b); /* the benchmark aid: nothing to create */
	return 0;
}

int box_create_for(struct pool *p, int profile, struct job *open)
{
	struct profile_state *ps = &p->prof[profile];
	if (ps->total >= ps->sp.max)
		return -EBUSY;
	return start_create(p, profile, open);
}

void box_refill(struct pool *p, int profile)
{
	struct profile_state *ps = &p->prof[profile];
	if (p->draining || p->failed || (ps->fail_streak && rollout__now_ns() < ps->retry_at) ||
	    (ps->img_state && ps->img_state != ENV_IMG_READY))
		return;
	bool noop = ps->sp.type == SBX_NOOP;
	while (ps->warm + ps->creating < ps->sp.warm + ps->waiting && ps->total < ps->sp.max &&
	       (noop || (ps->creating < POOL_ZY_PER_PROFILE && p->zy_inflight < POOL_ZY_INFLIGHT)))
		if (start_create(p, profile, NULL))
			break;
}

/* Opens waiting for a profile whose creations fail get a clear answer once nothing else
 * is coming for them. */
static void fail_waiting(struct pool *p, struct profile_state *ps, const char *why)
{
	if (ps->creating)
		return;
	for (struct job *j = ps->waiting_head, *n; j; j = n) {
		n = j->next;
		proto_job_done(p, j, rw_Status_INTERNAL, true, why);
	}
	ps->waiting_head = ps->waiting_tail = NULL;
	ps->waiting = 0;
	p->capacity_dirty = true;
}

/* A creation failed or timed out: back off (100 ms doubling to 30 s) so a broken profile
 * does not spin the zygote, and log at powers of two. */
static void creation_failed(struct pool *p, struct box *b, int err, const char *why)
{
	struct profile_state *ps = &p->prof[b->profile];
	ps->fail_streak++;
	uint64_t delay_ms = 100ull << (ps->fail_streak < 9 ? ps->fail_streak - 1 : 8);
	if (delay_ms > 30000)
		delay_ms = 30000;
	ps->retry_at = rollout__now_ns() + ROLLOUT_MS(delay_ms);
	if ((ps->fail_streak & (ps->fail_streak - 1)) == 0) {
		char name[160];
		RLOG(RLOG_WARN, why, "profile=\"%s\" err=%s failures_in_a_row=%u retry_ms=%llu",
		     rlog_esc(name, sizeof(name), ps->sp.name), rollout_err_name(err), ps->fail_streak,
		     (unsigned long long)delay_ms);
	}
	pool_metrics_create_failed(p->m);
	box_kill(p, b, rw_Status_INTERNAL, rw_Status_INTERNAL, true, why);
	fail_waiting(p, ps, why);
}

static void on_answer(struct pool *p, const struct zy_resp *r, int fd, int pidfd)
{
	p->zy_progress = rollout__now_ns();
	struct box *b = box_find(p, r->id);
	/* Creations asked for before this one and still unanswered never will be. */
	if (b && b->state == BOX_CREATING)
		while (p->creating_head && p->creating_head != b) {
			pool_metrics_create_timeout(p->m);
			creation_failed(p, p->creating_head, -ENODATA, "sandbox creation answer lost");
		}
	if (!b || b->state != BOX_CREATING) {
		/* Late (its creation timed out) or unknown: nobody wants it. */
		if (fd >= 0)
			close(fd);
		if (pidfd >= 0)
			close(pidfd);
		if (r->status == 0)
			zygote_request(p, ZY_DESTROY, 0, r->id, NULL);
		return;
	}
	struct profile_state *ps = &p->prof[b->profile];
	if (r->status && b->for_open &&
	    (r->status == -ENOENT || r->status == -EXDEV || r->status == -EINVAL || r->status == -EBADMSG)) {
		/* The open named a snapshot this pool cannot use: the open's error, not the
		 * profile's (no back-off). */
		struct job *j = b->for_open;
		b->for_open = NULL;
		proto_job_done(p, j, r->status == -ENOENT ? rw_Status_NOT_FOUND : rw_Status_BAD_REQUEST,
			       false,
			       r->status == -ENOENT  ? "no such snapshot in the store"
			       : r->status == -EXDEV ? "the snapshot was taken on another image"
						     : "the snapshot is damaged");
		box_kill(p, b, rw_Status_INTERNAL, rw_Status_INTERNAL, true, "creation failed");
		return;
	}
	if (r->status) {
		creation_failed(p, b, r->status, "sandbox creation failed");
		return;
	}
	ps->creating--;
	p->zy_inflight--;
	creating_remove(p, b);
	/* Init's death shows as EOF on its socket; the zygote keeps the pidfd to kill it, and
	 * one descriptor per sandbox here keeps 10k sandboxes possible. */
	if (pidfd >= 0)
		close(pidfd);
	ps->fail_streak = 0;
	b->s.fd = fd;
	b->s.pid = r->pid;
	b->s.uid = r->uid;
	b->oom_seen = r->oom_before;
	b->deadline = 0;
	snprintf(b->s.cgname, sizeof(b->s.cgname), "sbx-%llu", (unsigned long long)b->s.id);
	pool_metrics_create_ns(p->m, r->create_ns);
	frame_init(&b->io, fd, SBX_MAX_FRAME);
	int rc = loop_add(p->loop, fd, EPOLLIN, act_on_io, b);
	if (rc) {
		/* Counted as a creation that failed: the state is CREATING again until killed. */
		ps->creating++;
		p->zy_inflight++;
		creating_append(p, b);
		creation_failed(p, b, rc, "cannot watch a new sandbox");
		return;
	}
	b->watched = true;
	box_ready(p, b);
	box_refill(p, b->profile);
}

void box_on_zygote(void *arg, uint32_t events)
{
	struct pool *p = arg;
	if (events & EPOLLOUT) {
		int rc = zy_flush(&p->zy);
		if (rc < 0) {
			pool__fail(p, rc, "the zygote is gone");
			return;
		}
		if (rc == 0 && p->zy_out && loop_mod(p->loop, p->zy.fd, EPOLLIN) == 0)
			p->zy_out = false;
	}
	/* Every answer waiting: the zygote may block on a full socket until we read. */
	while (!p->failed) {
		struct zy_resp r;
		int fd = -1, pidfd = -1;
		int rc = zy_receive(&p->zy, &r, &fd, &pidfd);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			pool__fail(p, rc, "the zygote is gone");
			return;
		}
		on_answer(p, &r, fd, pidfd);
	}
}

static void overdue(struct pool *p, struct box *b, void *arg)
{
	uint64_t now = *(uint64_t *)arg;
	if (!b->deadline || now <= b->deadline)
		return;
	if (b->state == BOX_CREATING) {
		/* Only while the zygote makes no progress at all: a busy zygote working through
		 * the creations before this one is not a lost answer. */
		if (now - p->zy_progress <= ROLLOUT_MS(p->cfg->create_timeout_ms))
			return;
		pool_metrics_create_timeout(p->m);
		creation_failed(p, b, -ETIMEDOUT, "sandbox creation timed out");
	} else if (b->cur) {
		/* The action ran past its own timeout (init enforces it, plus a grace): that is the
		 * action's doing, not the infrastructure's. The sandbox cannot be trusted to answer
		 * again, so it goes. */
		box_kill(p, b, rw_Status_TIMEOUT, rw_Status_CANCELLED, false,
			 "the action overran its timeout; its sandbox was destroyed");
	}
}

void box_tick(struct pool *p, uint64_t now)
{
	box_each(p, overdue, &now);
	for (size_t i = 0; i < p->nprof; i++)
		box_refill(p, (int)i);
}
