/* The coordinator protocol (see proto.h). */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "action.h"
#include "boxes.h"
#include "completion.h"
#include "env.h"
#include "log.h"
#include "peer.h"
#include "rollout_version.h"
#include "util.h"

void proto_send(struct pool *p, struct peer *peer, const struct rw_completion *c)
{
	size_t extra = (c->message ? strlen(c->message) : 0) + (c->checkpoint ? strlen(c->checkpoint) : 0) +
		       (c->snapshot ? strlen(c->snapshot) : 0);
	struct fb_builder *b = pool__builder(p, 1024 + extra);
	ssize_t n = b ? rw_completion_build(b, c) : -ENOMEM;
	if (n < 0) {
		/* Cannot happen with the sizes above; if it does the coordinator's pool timeout
		 * completes the request. */
		pool_metrics_answer_dropped(p->m);
		return;
	}
	pool_metrics_completion(p->m, c->status);
	peer_answer(p, peer, c->dispatch_id, p->build, (size_t)n);
}

void proto_complete(struct pool *p, struct peer *peer, uint64_t dispatch, uint64_t request_id, int status,
		    bool infra, const char *message, int result_type, uint64_t sandbox)
{
	struct rw_completion c = { .dispatch_id = dispatch,
				   .request_id = request_id,
				   .status = (uint16_t)status,
				   .infra_failed = infra,
				   .message = message,
				   .result_type = (uint8_t)result_type,
				   .sandbox = sandbox };
	proto_send(p, peer, &c);
}

void proto_job_free(struct pool *p, struct job *j)
{
	(void)p;
	if (!j)
		return;
	j->peer->jobs--;
	free(j->msg);
	free(j);
}

void proto_job_done_checkpoint(struct pool *p, struct job *j, int status, bool infra, const char *message,
			       const char *checkpoint, uint64_t checkpoint_rid)
{
	struct rw_completion c = { .dispatch_id = j->dispatch,
				   .request_id = j->request_id,
				   .status = (uint16_t)status,
				   .infra_failed = infra,
				   .message = message,
				   .checkpoint = checkpoint,
				   .checkpoint_request_id = checkpoint_rid };
	proto_send(p, j->peer, &c);
	proto_job_free(p, j);
}

void proto_job_done(struct pool *p, struct job *j, int status, bool infra, const char *message)
{
	int rkind =
	    j->kind == rw_Action_Exec && status == rw_Status_OK ? rw_Result_ExecResult : rw_Result_NONE;
	proto_complete(p, j->peer, j->dispatch, j->request_id, status, infra, message, rkind, 0);
	proto_job_free(p, j);
}

void proto_send_capacity(struct pool *p, struct peer *only, bool hello)
{
	struct fb_builder *b = pool__builder(p, 4096 + p->nprof * 256);
	if (!b)
		return;
	fb_ref_t caps[64];
	size_t n = p->nprof < 64 ? p->nprof : 64;
	for (size_t i = 0; i < n; i++) {
		struct profile_state *ps = &p->prof[i];
		fb_ref_t name = fb_create_string(b, ps->sp.name);
		uint32_t taken = ps->leased + ps->waiting;
		rw_ProfileCapacity_start(b);
		rw_ProfileCapacity_add_profile(b, name);
		rw_ProfileCapacity_add_total(b, ps->sp.max);
		rw_ProfileCapacity_add_free(b, taken < ps->sp.max ? ps->sp.max - taken : 0);
		rw_ProfileCapacity_add_warm(b, ps->warm);
		rw_ProfileCapacity_add_noop(b, ps->sp.type == SBX_NOOP);
		caps[i] = rw_ProfileCapacity_end(b);
	}
	fb_ref_t vec = fb_create_vec_ref(b, caps, n);
	fb_ref_t body;
	int kind;
	if (hello) {
		fb_ref_t ident = fb_create_string(b, p->cfg->identity);
		fb_ref_t ver = fb_create_string(b, ROLLOUT_VERSION_STRING);
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
	ssize_t len = rw_Message_finish(b, rw_Message_end(b));
	if (len < 0)
		return;
	/* Best effort: a capacity message lost is replaced by the next one. */
	for (struct peer *q = p->peers; q; q = q->next)
		if (only ? q == only : q->hello)
			(void)peer_send(p, q, p->build, (size_t)len);
}

static int find_profile(const struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->nprof && name; i++)
		if (strcmp(p->prof[i].sp.name, name) == 0)
			return (int)i;
	return -1;
}

static void on_open(struct pool *p, struct job *j, const rw_Open_t *o)
{
	int idx = find_profile(p, rw_Open_profile(o));
	if (idx < 0) {
		proto_job_done(p, j, rw_Status_UNKNOWN_PROFILE, false, "no such profile on this pool");
		return;
	}
	const char *why;
	if (!env_ready(p, idx, &why) && p->prof[idx].img_state == ENV_IMG_FAILED) {
		proto_job_done(p, j, rw_Status_UNKNOWN_PROFILE, false, why);
		return;
	}
	const char *snap = rw_Open_snapshot(o);
	j->checkpoint_every = rw_Open_checkpoint_every(o);
	if ((snap && *snap) || j->checkpoint_every) {
		if (!p->prof[idx].sp.image) {
			proto_job_done(p, j, rw_Status_BAD_REQUEST, false,
				       "snapshots and checkpoints need a profile with an image");
			return;
		}
		if (snap && *snap && !snap_id_valid(snap)) {
			proto_job_done(p, j, rw_Status_BAD_REQUEST, false, "not a snapshot id");
			return;
		}
	}
	if (snap && *snap) {
		/* A sandbox made for this open alone, on the snapshot's layers. */
		snprintf(j->snap, sizeof(j->snap), "%s", snap);
		struct profile_state *ps = &p->prof[idx];
		if (ps->img_state == ENV_IMG_RESOLVING) {
			ROLLOUT_FIFO_APPEND(ps->snapq_head, ps->snapq_tail, j, next);
			return;
		}
		int rc = box_create_for(p, idx, j);
		if (rc)
			proto_job_done(
			    p, j, rc == -EBUSY ? rw_Status_NO_CAPACITY : rw_Status_INTERNAL, rc != -EBUSY,
			    rc == -EBUSY ? "profile is at its sandbox limit" : "cannot create a sandbox");
		return;
	}
	if (box_claim(p, idx, j))
		return;
	if (!box_can_wait(p, idx)) {
		proto_job_done(p, j, rw_Status_NO_CAPACITY, false, "profile is at its sandbox limit");
		return;
	}
	/* Waits in the profile's queue for the next sandbox; creations are capped in flight,
	 * so a burst of opens is a queue here, never a burst of requests to the zygote. */
	struct profile_state *ps = &p->prof[idx];
	ROLLOUT_FIFO_APPEND(ps->waiting_head, ps->waiting_tail, j, next);
	ps->waiting++;
	p->capacity_dirty = true;
	box_refill(p, idx);
}

static void on_request(struct pool *p, struct peer *peer, uint64_t dispatch, const rw_Request_t *r,
		       const uint8_t *raw, size_t len, uint8_t **own)
{
	uint64_t rid = rw_Request_request_id(r);
	struct acache_entry *e;
	int rc = acache_begin(&p->cache, peer->id, dispatch, &e);
	if (rc == -EEXIST) {
		pool_metrics_duplicate(p->m);
		/* Answered and delivered: the same answer again. Waiting in the outbox: it goes
		 * now if it can. Still running: its one answer is on the way. */
		if (e->done && e->bytes && !e->pinned)
			(void)peer_send(p, peer, e->bytes, e->len);
		else if (e->done)
			peer_flush(p, peer, rollout__now_ns());
		return;
	}
	if (rc) {
		proto_complete(p, peer, dispatch, rid, rw_Status_INTERNAL, true, "out of memory", 0, 0);
		return;
	}
	peer->cached++;
	int kind = rw_Request_action_type(r);
	pool_metrics_request(p->m, kind);
	if (p->draining) {
		proto_complete(p, peer, dispatch, rid, rw_Status_SHUTTING_DOWN, true, "pool is shutting down",
			       0, 0);
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		proto_complete(p, peer, dispatch, rid, rw_Status_INTERNAL, true, "out of memory", 0, 0);
		return;
	}
	j->peer = peer;
	peer->jobs++;
	j->dispatch = dispatch;
	j->request_id = rid;
	j->kind = kind;
	uint64_t sid = 0;
	switch (kind) {
	case rw_Action_Open:
		on_open(p, j, rw_Request_action_as_Open(r));
		return;
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
	case rw_Action_Signal:
		sid = rw_Signal_sandbox(rw_Request_action_as_Signal(r));
		break;
	case rw_Action_Snapshot:
		sid = rw_Snapshot_sandbox(rw_Request_action_as_Snapshot(r));
		j->checkpoint = rw_Snapshot_checkpoint(rw_Request_action_as_Snapshot(r));
		break;
	default:
		proto_job_done(p, j, rw_Status_BAD_REQUEST, false, "action not served by this pool");
		return;
	}
	struct box *b = box_find(p, sid);
	if (!b || b->state != BOX_LEASED || b->owner != peer) {
		proto_job_done(p, j, rw_Status_NOT_FOUND, false, "no such sandbox for this coordinator");
		return;
	}
	if (kind == rw_Action_Signal) {
		act_signal(p, b, j, raw, len);
		return;
	}
	if (kind == rw_Action_Snapshot && !p->prof[b->profile].sp.image) {
		proto_job_done(p, j, rw_Status_BAD_REQUEST, false, "snapshots need a profile with an image");
		return;
	}
	if (kind == rw_Action_Close) {
		box_kill(p, b, rw_Status_CANCELLED, rw_Status_CANCELLED, false, "sandbox closed");
		proto_complete(p, peer, dispatch, rid, rw_Status_OK, false, NULL, rw_Result_Closed, 0);
		proto_job_free(p, j);
		return;
	}
	if (own && *own) {
		j->msg = *own; /* the caller's private copy: taken, not copied again */
		*own = NULL;
	} else {
		j->msg = malloc(len);
		if (!j->msg) {
			proto_job_done(p, j, rw_Status_INTERNAL, true, "out of memory");
			return;
		}
		memcpy(j->msg, raw, len);
	}
	j->len = len;
	act_enqueue(p, b, j);
}

struct cancel {
	struct peer *peer;
	uint64_t target;
	bool done;
};

static void cancel_in(struct pool *p, struct box *b, void *arg)
{
	struct cancel *c = arg;
	if (c->done || b->owner != c->peer)
		return;
	/* A running action is stopped the only sure way: its sandbox goes. */
	if (b->cur && b->cur->dispatch == c->target) {
		c->done = true;
		box_kill(p, b, rw_Status_CANCELLED, rw_Status_CANCELLED, false,
			 "cancelled by the coordinator");
		return;
	}
	struct job *prev = NULL;
	for (struct job *j = b->qhead; j; prev = j, j = j->next)
		if (j->dispatch == c->target) {
			if (prev)
				prev->next = j->next;
			else
				b->qhead = j->next;
			if (b->qtail == j)
				b->qtail = prev;
			c->done = true;
			proto_job_done(p, j, rw_Status_CANCELLED, false, "cancelled by the coordinator");
			return;
		}
}

static void on_heartbeat(struct pool *p, struct peer *peer, const rw_Heartbeat_t *hb)
{
	struct fb_builder *b = pool__builder(p, 256);
	if (!b)
		return;
	rw_Heartbeat_start(b);
	rw_Heartbeat_add_seq(b, rw_Heartbeat_seq(hb));
	rw_Heartbeat_add_sent_ns(b, rw_Heartbeat_sent_ns(hb));
	/* Our boot id: a coordinator that spoke to a previous run of this pool at the same
	 * address learns it was restarted from the first heartbeat answer. */
	rw_Heartbeat_add_boot_id(b, p->boot_id);
	fb_ref_t h = rw_Heartbeat_end(b);
	rw_Message_start(b);
	rw_Message_add_body(b, rw_Body_Heartbeat, h);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n > 0)
		(void)peer_send(p, peer, p->build, (size_t)n);
}

static void on_message(struct pool *p, const void *rid, size_t rid_len, const uint8_t *buf, size_t len,
		       uint8_t **own)
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
	uint64_t now = rollout__now_ns();
	struct peer *peer = peer_get(p, rid, rid_len, now);
	if (!peer) {
		pool_metrics_refused(p->m);
		return;
	}
	peer->last_seen = now;
	/* Heard from: it is connected (again), so what waits for it can go. */
	if (peer->nout)
		peer_flush(p, peer, now);
	switch (rw_Message_body_type(m)) {
	case rw_Body_CoordinatorHello: {
		const rw_CoordinatorHello_t *h = rw_Message_body_as_CoordinatorHello(m);
		if (rw_CoordinatorHello_lease_ms(h))
			peer->lease_ms = rw_CoordinatorHello_lease_ms(h);
		peer->hello = true;
		char ident[256];
		RLOG(RLOG_INFO, "coordinator hello", "coordinator=\"%s\" lease_ms=%u",
		     rlog_esc(ident, sizeof(ident), rw_CoordinatorHello_identity(h)), peer->lease_ms);
		proto_send_capacity(p, peer, true);
		break;
	}
	case rw_Body_Heartbeat:
		on_heartbeat(p, peer, rw_Message_body_as_Heartbeat(m));
		break;
	case rw_Body_Request:
		on_request(p, peer, rw_Message_dispatch_id(m), rw_Message_body_as_Request(m), buf, len, own);
		break;
	case rw_Body_Cancel: {
		struct cancel c = { peer, rw_Cancel_target_dispatch_id(rw_Message_body_as_Cancel(m)), false };
		box_each(p, cancel_in, &c);
		break;
	}
	default:
		pool_metrics_refused(p->m);
	}
}

void proto_on_message(struct pool *p, const void *rid, size_t rid_len, const uint8_t *buf, size_t len)
{
	on_message(p, rid, rid_len, buf, len, NULL);
}

void proto_take_message(struct pool *p, const void *rid, size_t rid_len, uint8_t **buf, size_t len)
{
	on_message(p, rid, rid_len, *buf, len, buf);
}

void proto_tick(struct pool *p, uint64_t now)
{
	for (struct peer *q = p->peers; q; q = q->next) {
		if (now - q->last_seen < (uint64_t)q->lease_ms * 1000000ull) {
			if (q->nout)
				peer_flush(p, q, now);
			continue;
		}
		if (q->boxes) {
			RLOG(RLOG_WARN, "lease expired", "sandboxes=%u lease_ms=%u", q->boxes, q->lease_ms);
			box_kill_owned(p, q);
		}
		/* Gone past its lease: what it did not take is given up, so the peer can go. */
		if (q->nout)
			peer_forget_outbox(p, q, now);
		q->hello = false;
	}
	acache_expire(&p->cache, now);
	peer_prune(p, now);
	if (p->capacity_dirty && now - p->last_capacity_sent > 100000000ull) {
		proto_send_capacity(p, NULL, false);
		p->capacity_dirty = false;
		p->last_capacity_sent = now;
	}
}

void proto_drain(struct pool *p)
{
	for (size_t i = 0; i < p->nprof; i++) {
		struct profile_state *ps = &p->prof[i];
		for (struct job *j = ps->waiting_head, *n; j; j = n) {
			n = j->next;
			proto_job_done(p, j, rw_Status_SHUTTING_DOWN, true, "pool is shutting down");
		}
		ps->waiting_head = ps->waiting_tail = NULL;
		ps->waiting = 0;
		for (struct job *j = ps->snapq_head, *n; j; j = n) {
			n = j->next;
			proto_job_done(p, j, rw_Status_SHUTTING_DOWN, true, "pool is shutting down");
		}
		ps->snapq_head = ps->snapq_tail = NULL;
	}
	p->capacity_dirty = true;
}
