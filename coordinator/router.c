/* The router (see router.h): tables and decisions. Dispatches and sessions sit in hash
 * tables for lookup and on intrusive lists for the sweeps (deadlines, a pool or a trainer
 * gone), so no sweep walks empty buckets. A dispatch whose requester stopped waiting
 * (deadline passed, trainer gone) stays until its pool answers, so its credit is returned
 * only when the pool is really done and a sandbox opened for nobody is closed again. */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router_int.h"
#include "util.h"

/* ---- requests from trainers ---- */

/* The sandbox a request names (0 for Open and unserved actions). */
static uint64_t req_sandbox(const rw_Request_t *q, int kind)
{
	switch (kind) {
	case rw_Action_Exec:
		return rw_Exec_sandbox(rw_Request_action_as_Exec(q));
	case rw_Action_PutFile:
		return rw_PutFile_sandbox(rw_Request_action_as_PutFile(q));
	case rw_Action_GetFile:
		return rw_GetFile_sandbox(rw_Request_action_as_GetFile(q));
	case rw_Action_Close:
		return rw_Close_sandbox(rw_Request_action_as_Close(q));
	case rw_Action_Signal:
		return rw_Signal_sandbox(rw_Request_action_as_Signal(q));
	case rw_Action_Snapshot:
		return rw_Snapshot_sandbox(rw_Request_action_as_Snapshot(q));
	default:
		return 0;
	}
}

/* The pool with the most free sandboxes of the profile among those up with credits. */
static int pick_pool(struct router *r, const char *profile, bool *known, bool *any_up)
{
	int best = -1;
	uint32_t best_free = 0;
	*known = *any_up = false;
	for (int i = 0; i < r->cfg.npools; i++) {
		struct rt_pool *p = &r->pools[i];
		if (!p->up || p->retired)
			continue;
		*any_up = true;
		for (int k = 0; k < p->nprof; k++) {
			if (strcmp(p->prof[k].name, profile))
				continue;
			*known = true;
			if (p->credits > 0 && p->prof[k].free > best_free) {
				best = i;
				best_free = p->prof[k].free;
			}
		}
	}
	return best;
}

static void take_slot(struct rt_pool *p, const char *profile)
{
	for (int k = 0; k < p->nprof; k++)
		if (!strcmp(p->prof[k].name, profile) && p->prof[k].free)
			p->prof[k].free--;
}

static enum router_verdict submit_open(struct router *r, struct rt_client *c, uint8_t *rec, size_t len,
				       const rw_Request_t *q, uint64_t rid, uint64_t deadline, uint64_t now)
{
	const char *profile = rw_Open_profile(rw_Request_action_as_Open(q));
	if (!profile)
		profile = "default";
	bool known, any_up;
	int p = pick_pool(r, profile, &known, &any_up);
	if (!any_up) {
		r->ops->on_request(r->ctx, rw_Action_Open);
		rollout__rt_complete_local(r, c, rid, rw_Action_Open, rw_Status_UNAVAILABLE, true,
					   "no pool is up", now, now);
		return ROUTER_TAKEN;
	}
	if (!known) {
		r->ops->on_request(r->ctx, rw_Action_Open);
		rollout__rt_complete_local(r, c, rid, rw_Action_Open, rw_Status_UNKNOWN_PROFILE, false,
					   "no pool offers this profile", now, now);
		return ROUTER_TAKEN;
	}
	if (p < 0 || r->whead) {
		/* Everything full (or others wait already, in order): queue, bounded. */
		if (r->nwait >= r->cfg.max_queue || strlen(profile) >= sizeof(((struct waiting *)0)->profile))
			return ROUTER_WAIT;
		struct waiting *w = malloc(sizeof(*w) + len);
		if (!w)
			return ROUTER_WAIT;
		*w = (struct waiting){
			.c = c, .request_id = rid, .deadline = deadline, .submitted = now, .len = len
		};
		snprintf(w->profile, sizeof(w->profile), "%s", profile);
		memcpy(w->msg, rec, len);
		ROLLOUT_FIFO_APPEND(r->whead, r->wtail, w, next);
		r->nwait++;
		c->inflight++;
		r->ops->on_request(r->ctx, rw_Action_Open);
		return ROUTER_TAKEN;
	}
	if (rollout__rt_dispatch(r, c, p, rec, len, rid, rw_Action_Open, deadline, now, 0))
		return ROUTER_WAIT;
	take_slot(&r->pools[p], profile);
	r->ops->on_request(r->ctx, rw_Action_Open);
	return ROUTER_TAKEN;
}

enum router_verdict router_submit(struct router *r, struct rt_client *c, uint8_t *rec, size_t len,
				  uint64_t now)
{
	struct fb_verify_result vr;
	int vrc = rw_Message_verify_ex(rec, len, NULL, &vr);
	if (vrc) {
		/* Nothing in it can be trusted, not even its request id: a completion with id 0
		 * tells the trainer a record it wrote was refused. */
		r->ops->on_refused(r->ctx, "record failed verification");
		char why[160];
		snprintf(why, sizeof(why), "record refused: %s", fb_verify_strerror(vrc));
		rollout__rt_complete_local(r, c, 0, 0, rw_Status_BAD_REQUEST, false, why, now, now);
		return ROUTER_TAKEN;
	}
	const rw_Message_t *m = rw_Message_root(rec);
	if (rw_Message_body_type(m) == rw_Body_Piece)
		return ROUTER_PIECE;
	const rw_Request_t *q = rw_Message_body_as_Request(m);
	if (!q) {
		r->ops->on_refused(r->ctx, "record is not a request");
		rollout__rt_complete_local(r, c, 0, 0, rw_Status_BAD_REQUEST, false,
					   "record refused: not a Request", now, now);
		return ROUTER_TAKEN;
	}
	uint64_t rid = rw_Request_request_id(q), deadline = rw_Request_deadline_ns(q);
	int kind = rw_Request_action_type(q);
	const char *why = NULL;
	int status = 0;
	bool infra = false;
	if (rw_Message_schema_version(m) > rw_SchemaVersion_Current) {
		status = rw_Status_BAD_REQUEST;
		why = "schema version newer than this rolloutd's";
	} else if (!rw_Message_has_dispatch_id(m)) {
		status = rw_Status_BAD_REQUEST;
		why = "request has no dispatch_id placeholder (build it with librollout)";
	} else if (deadline && deadline <= now) {
		status = rw_Status_TIMEOUT;
		why = "deadline passed before dispatch";
	} else if (r->cfg.stopping && r->cfg.stopping(r->ctx)) {
		status = rw_Status_SHUTTING_DOWN;
		infra = true;
		why = "rolloutd is shutting down";
	} else if (kind != rw_Action_Open && !req_sandbox(q, kind)) {
		status = rw_Status_BAD_REQUEST;
		why = "action not served";
	}
	if (why) {
		r->ops->on_request(r->ctx, kind);
		rollout__rt_complete_local(r, c, rid, kind, status, infra, why, now, now);
		return ROUTER_TAKEN;
	}
	if (kind == rw_Action_Open)
		return submit_open(r, c, rec, len, q, rid, deadline, now);
	uint64_t sb = req_sandbox(q, kind);
	struct session *x = rollout__rt_sess_find(r, sb);
	if (!x || x->c != c || x->closing) {
		r->ops->on_request(r->ctx, kind);
		rollout__rt_complete_local(
		    r, c, rid, kind, rw_Status_NOT_FOUND, false,
		    x && x->c == c ? "sandbox is closing" : "no such sandbox for this trainer", now, now);
		return ROUTER_TAKEN;
	}
	if (x->lost) {
		/* Its pool lost it; the trainer learns the checkpoint from this step. A Close has
		 * nothing left to close and ends the record. */
		r->ops->on_request(r->ctx, kind);
		if (kind == rw_Action_Close) {
			rollout__rt_complete_local(r, c, rid, kind, rw_Status_OK, false,
						   "the sandbox was lost already", now, now);
			rollout__rt_sess_remove(r, x);
		} else {
			rollout__rt_complete_lost(r, c, rid, kind, "the sandbox's pool lost it", x, now, now);
		}
		return ROUTER_TAKEN;
	}
	struct rt_pool *p = &r->pools[x->pool];
	if (!p->up) {
		r->ops->on_request(r->ctx, kind);
		rollout__rt_complete_lost(r, c, rid, kind, "the sandbox's pool is down", x, now, now);
		return ROUTER_TAKEN;
	}
	if (!p->credits)
		return ROUTER_WAIT;
	if (rollout__rt_dispatch(r, c, x->pool, rec, len, rid, kind, deadline, now, sb))
		return ROUTER_WAIT;
	/* The session stays until the pool answers the Close: a Close that had to wait or be
	 * retried still finds it, and the sandbox is never forgotten while it exists. */
	if (kind == rw_Action_Close)
		x->closing = true;
	r->ops->on_request(r->ctx, kind);
	return ROUTER_TAKEN;
}

bool router_serve_waiting(struct router *r, uint64_t now)
{
	while (r->whead) {
		struct waiting *w = r->whead;
		bool known, any_up;
		int p = pick_pool(r, w->profile, &known, &any_up);
		if (any_up && !known) {
			w->c->inflight--;
			rollout__rt_complete_local(r, w->c, w->request_id, rw_Action_Open,
						   rw_Status_UNKNOWN_PROFILE, false,
						   "no pool offers this profile", w->submitted, now);
		} else if (p < 0) {
			return true;
		} else {
			w->c->inflight--;
			if (rollout__rt_dispatch(r, w->c, p, w->msg, w->len, w->request_id, rw_Action_Open,
						 w->deadline, w->submitted, 0)) {
				w->c->inflight++;
				return true;
			}
			take_slot(&r->pools[p], w->profile);
		}
		r->whead = w->next;
		if (!r->whead)
			r->wtail = NULL;
		r->nwait--;
		free(w);
	}
	return false;
}

/* ---- pools ---- */

static void apply_capacity(struct rt_pool *p, fb_tabvec_t v)
{
	p->nprof = 0;
	for (size_t i = 0; i < fb_tabvec_len(v) && p->nprof < ROUTER_MAX_PROFILE; i++) {
		const rw_ProfileCapacity_t *pc = rw_PoolHello_capacity_at(v, i);
		const char *name = rw_ProfileCapacity_profile(pc);
		if (!name || strlen(name) >= sizeof(p->prof[0].name))
			continue;
		snprintf(p->prof[p->nprof].name, sizeof(p->prof[0].name), "%s", name);
		p->prof[p->nprof].free = rw_ProfileCapacity_free(pc);
		p->prof[p->nprof].warm = rw_ProfileCapacity_warm(pc);
		p->prof[p->nprof].total = rw_ProfileCapacity_total(pc);
		p->prof[p->nprof].noop = rw_ProfileCapacity_noop(pc);
		p->nprof++;
	}
}

/* Records the checkpoint a pool's answer names for x (the one this step made, or on
 * SANDBOX_LOST the pool's latest; on an open from a snapshot, the pool may name the
 * snapshot): the newest replaces the one before, since a sandbox's steps run one at a time.
 * Whether the answer named one. */
static bool take_checkpoint(struct router *r, struct session *x, const struct rw_completion *k)
{
	if (!k->checkpoint || !*k->checkpoint)
		return false;
	if (x && rollout__rt_sess_checkpoint(r, x, k->checkpoint, k->checkpoint_request_id) == -EINVAL)
		r->ops->on_refused(r->ctx, "checkpoint id over the limit");
	return true;
}

static void on_completion(struct router *r, int pool, const uint8_t *buf, size_t len, uint64_t now)
{
	struct rw_completion k;
	rw_completion_read(buf, &k);
	struct dispatch *d = rollout__rt_disp_find(r, k.dispatch_id);
	if (!d || d->pool != pool) {
		/* Unknown, answered already, or another pool's dispatch: never followed. */
		r->ops->on_refused(r->ctx,
				   d ? "answer from the wrong pool" : "answer to an unknown dispatch");
		return;
	}
	if (k.partial) {
		/* Streamed output of an exec still running: passed on, the dispatch stays. */
		if (d->kind != rw_Action_Exec || !rw_completion_fits(buf, d->kind))
			r->ops->on_refused(r->ctx, "streamed output for an action that is not an exec");
		else if (d->c && !d->c->gone && r->ops->stream)
			r->ops->stream(r->ctx, d->c, buf, len);
		return;
	}
	rollout__rt_disp_unlink(r, d);
	if (d->c)
		d->c->inflight--;
	if (!rw_completion_fits(buf, d->kind)) {
		r->ops->on_refused(r->ctx, "answer without the result its status promises");
		rollout__rt_complete_local(r, d->c, d->request_id, d->kind, rw_Status_INTERNAL, true,
					   "the pool sent a malformed answer", d->submitted, now);
		free(d);
		return;
	}
	/* A lost session still takes what its pool says (steps queued behind the one that
	 * found the sandbox gone may name a newer checkpoint). */
	struct session *x = d->sandbox ? rollout__rt_sess_find(r, d->sandbox) : NULL;
	if (x && x->pool != pool)
		x = NULL;
	if (x) {
		bool named = take_checkpoint(r, x, &k);
		if (k.status == rw_Status_SANDBOX_LOST) {
			/* The pool forgot (or never knew: a restart) what rolloutd knows. */
			size_t n = named ? 0 : rollout__rt_add_checkpoint(r, buf, x);
			if (n) {
				buf = r->build;
				len = n;
			}
			if ((named || n) && r->ops->on_checkpoint)
				r->ops->on_checkpoint(r->ctx, ROUTER_CHECKPOINT_GIVEN);
		}
	}
	if (d->kind == rw_Action_Open && k.status == rw_Status_OK) {
		struct session *old = rollout__rt_sess_find(r, k.sandbox);
		if (old && old->lost) /* a lost one's id given out again: the new sandbox wins */
			rollout__rt_sess_remove(r, old);
		if (!d->c || d->c->gone || rollout__rt_sess_add(r, k.sandbox, pool, d->c))
			rollout__rt_orphan_add(r, pool, k.sandbox); /* nobody will use it: close it again */
		else
			take_checkpoint(r, rollout__rt_sess_find(r, k.sandbox), &k);
	} else if (x && d->kind == rw_Action_Close) {
		rollout__rt_sess_remove(r, x); /* closed, whatever the status says */
	} else if (x && k.status == rw_Status_SANDBOX_LOST) {
		rollout__rt_sess_lost(r, x);
	}
	r->ops->on_completion(r->ctx, d->kind, k.status, now - d->submitted);
	if (d->c && !d->c->gone)
		r->ops->complete(r->ctx, d->c, buf, len);
	free(d);
}

void router_pool_message(struct router *r, int pool, uint8_t *buf, size_t len, uint64_t now)
{
	struct rt_pool *p = router_pool(r, pool);
	if (!p || rw_Message_verify(buf, len) != 0) {
		r->ops->on_refused(r->ctx, "malformed message from a pool");
		return;
	}
	const rw_Message_t *m = rw_Message_root(buf);
	if (rw_Message_schema_version(m) > rw_SchemaVersion_Current) {
		r->ops->on_refused(r->ctx, "pool speaks a newer schema");
		return;
	}
	switch (rw_Message_body_type(m)) {
	case rw_Body_PoolHello: {
		const rw_PoolHello_t *h = rw_Message_body_as_PoolHello(m);
		if (p->up && p->boot_id != rw_PoolHello_boot_id(h)) {
			router_pool_down(r, pool, "pool restarted");
			return; /* the reset link says hello again; this pool answers it */
		}
		bool was_up = p->up;
		p->up = true;
		p->boot_id = rw_PoolHello_boot_id(h);
		uint32_t max = rw_PoolHello_max_inflight(h);
		p->credits = max > p->inflight ? max - p->inflight : 0;
		apply_capacity(p, rw_PoolHello_capacity(h));
		if (!was_up) {
			char id[160];
			RLOG(RLOG_INFO, "pool up", "shard=%d pool=%d identity=\"%s\" credits=%u",
			     r->cfg.shard, pool, rlog_esc(id, sizeof(id), rw_PoolHello_identity(h)),
			     p->credits);
		}
		break;
	}
	case rw_Body_CapacityUpdate:
		apply_capacity(p, rw_CapacityUpdate_capacity(rw_Message_body_as_CapacityUpdate(m)));
		break;
	case rw_Body_Heartbeat: {
		const rw_Heartbeat_t *hb = rw_Message_body_as_Heartbeat(m);
		if (p->up && rw_Heartbeat_has_boot_id(hb) && rw_Heartbeat_boot_id(hb) != p->boot_id)
			router_pool_down(r, pool, "pool restarted");
		break;
	}
	case rw_Body_Completion:
		on_completion(r, pool, buf, len, now);
		break;
	default:
		r->ops->on_refused(r->ctx, "unexpected message from a pool");
	}
}

void router_pool_down(struct router *r, int pool, const char *why)
{
	struct rt_pool *p = &r->pools[pool];
	if (p->up)
		RLOG(RLOG_WARN, "pool down", "shard=%d pool=%d reason=\"%s\"", r->cfg.shard, pool, why);
	uint64_t now = rollout__now_ns();
	/* Everything dispatched to it completes now, once, as lost; nothing is re-run. */
	for (struct dlink *e = r->disp_all.next, *n; e != &r->disp_all; e = n) {
		n = e->next;
		struct dispatch *d = CONTAINER(e, struct dispatch, all);
		if (d->pool != pool)
			continue;
		rollout__rt_disp_unlink(r, d);
		if (d->c)
			d->c->inflight--;
		struct session *x = d->sandbox ? rollout__rt_sess_find(r, d->sandbox) : NULL;
		rollout__rt_complete_lost(r, d->c, d->request_id, d->kind, "the pool stopped answering",
					  x && x->pool == pool ? x : NULL, d->submitted, now);
		free(d);
	}
	for (struct dlink *e = r->sess_all.next, *n; e != &r->sess_all; e = n) {
		n = e->next;
		struct session *x = CONTAINER(e, struct session, all);
		if (x->pool == pool)
			rollout__rt_sess_lost(r, x);
	}
	*p = (struct rt_pool){ .retired = p->retired };
	r->ops->pool_reset(r->ctx, pool);
}

/* ---- trainers and time ---- */

void router_client_gone(struct router *r, struct rt_client *c)
{
	c->gone = true;
	for (struct dlink *e = r->disp_all.next; e != &r->disp_all; e = e->next) {
		struct dispatch *d = CONTAINER(e, struct dispatch, all);
		if (d->c == c)
			d->c = NULL; /* its answer goes nowhere; an Open's sandbox is closed again */
	}
	for (struct dlink *e = r->sess_all.next, *n; e != &r->sess_all; e = n) {
		n = e->next;
		struct session *x = CONTAINER(e, struct session, all);
		if (x->c != c)
			continue;
		if (r->pools[x->pool].up && !x->closing && !x->lost)
			rollout__rt_orphan_add(r, x->pool, x->sandbox);
		rollout__rt_sess_remove(r, x);
	}
	for (struct waiting **pp = &r->whead; *pp;) {
		struct waiting *w = *pp;
		if (w->c != c) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		r->nwait--;
		free(w);
	}
	r->wtail = NULL;
	for (struct waiting *w = r->whead; w; w = w->next)
		r->wtail = w;
	c->inflight = 0;
	rollout__rt_close_orphans(r, rollout__now_ns());
}

static void send_cancel(struct router *r, struct dispatch *d)
{
	struct fb_builder b;
	fb_builder_init(&b, r->build, sizeof(r->build));
	rw_Cancel_start(&b);
	rw_Cancel_add_target_dispatch_id(&b, d->id);
	fb_ref_t cc = rw_Cancel_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Cancel, cc);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	if (n > 0)
		r->ops->pool_send(r->ctx, d->pool, r->build, (size_t)n);
}

void router_tick(struct router *r, uint64_t now)
{
	/* Deadlines: TIMEOUT now and the pool is told to stop. The entry stays until the pool
	 * answers (CANCELLED, or the result it had already sent): that returns the credit. */
	for (struct dlink *e = r->disp_all.next; e != &r->disp_all; e = e->next) {
		struct dispatch *d = CONTAINER(e, struct dispatch, all);
		if (!d->c || !d->deadline || d->deadline > now)
			continue;
		d->c->inflight--;
		rollout__rt_complete_local(r, d->c, d->request_id, d->kind, rw_Status_TIMEOUT, false,
					   "deadline passed", d->submitted, now);
		d->c = NULL;
		d->deadline = 0;
		send_cancel(r, d);
	}
	bool stopping = r->cfg.stopping && r->cfg.stopping(r->ctx);
	for (struct waiting **pp = &r->whead; *pp;) {
		struct waiting *w = *pp;
		bool late = w->deadline && w->deadline <= now;
		if (!late && !stopping) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		r->nwait--;
		w->c->inflight--;
		rollout__rt_complete_local(r, w->c, w->request_id, rw_Action_Open,
					   late ? rw_Status_TIMEOUT : rw_Status_SHUTTING_DOWN, !late,
					   late ? "deadline passed waiting for capacity"
						: "rolloutd is shutting down",
					   w->submitted, now);
		free(w);
	}
	r->wtail = NULL;
	for (struct waiting *w = r->whead; w; w = w->next)
		r->wtail = w;
	rollout__rt_close_orphans(r, now);
}
