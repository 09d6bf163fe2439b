/* The router's tables (see router_int.h): hash tables for lookup, intrusive lists for the
 * sweeps, and the sends that add to them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router_int.h"
#include "util.h"

static void dl_init(struct dlink *h)
{
	h->prev = h->next = h;
}
static void dl_add(struct dlink *h, struct dlink *e)
{
	e->next = h->next;
	e->prev = h;
	h->next->prev = e;
	h->next = e;
}
static void dl_del(struct dlink *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static size_t bucket(uint64_t v)
{
	return (size_t)(rollout__mix64(v) & (NB - 1));
}

int router_create(struct router **out, const struct router_cfg *cfg, const struct router_ops *ops, void *ctx)
{
	struct router *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->pools = calloc((size_t)(cfg->npools > 0 ? cfg->npools : 1), sizeof(*r->pools));
	if (!r->pools) {
		free(r);
		return -ENOMEM;
	}
	r->cfg = *cfg;
	r->ops = ops;
	r->ctx = ctx;
	dl_init(&r->disp_all);
	dl_init(&r->sess_all);
	*out = r;
	return 0;
}

void router_destroy(struct router *r)
{
	if (!r)
		return;
	while (r->disp_all.next != &r->disp_all) {
		struct dispatch *d = CONTAINER(r->disp_all.next, struct dispatch, all);
		dl_del(&d->all);
		free(d);
	}
	while (r->sess_all.next != &r->sess_all) {
		struct session *x = CONTAINER(r->sess_all.next, struct session, all);
		dl_del(&x->all);
		free(x->checkpoint);
		free(x);
	}
	for (struct waiting *w = r->whead, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	for (struct orphan *o = r->orphans, *n; o; o = n) {
		n = o->next;
		free(o);
	}
	free(r->pools);
	free(r);
}

int router_add_pool(struct router *r)
{
	struct rt_pool *v = realloc(r->pools, (size_t)(r->cfg.npools + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->pools = v;
	memset(&v[r->cfg.npools], 0, sizeof(*v));
	return r->cfg.npools++;
}

void router_retire_pool(struct router *r, int i, bool retired)
{
	if (i >= 0 && i < r->cfg.npools)
		r->pools[i].retired = retired;
}

struct rt_pool *router_pool(struct router *r, int i)
{
	return i >= 0 && i < r->cfg.npools ? &r->pools[i] : NULL;
}

void router_stats(const struct router *r, struct router_stats *s)
{
	s->dispatches = r->ndisp;
	s->sessions = r->nsess;
	s->lost = r->nlost;
	s->waiting = r->nwait;
}

/* ---- completions rolloutd makes itself ---- */

/* A Completion with no result into r->build, with a checkpoint when ckpt is set: its size,
 * or -ENOSPC. */
static ssize_t build_completion(struct router *r, uint64_t rid, int status, bool infra, const char *msg,
				const char *ckpt, uint64_t ckpt_rid)
{
	struct fb_builder b;
	fb_builder_init(&b, r->build, sizeof(r->build));
	struct rw_completion k = { .request_id = rid,
				   .status = (uint16_t)status,
				   .infra_failed = infra,
				   .message = msg,
				   .checkpoint = ckpt,
				   .checkpoint_request_id = ckpt_rid };
	return rw_completion_build(&b, &k);
}

static void complete_with(struct router *r, struct rt_client *c, uint64_t rid, int kind, int status,
			  bool infra, const char *msg, const struct session *x, uint64_t submitted,
			  uint64_t now)
{
	r->ops->on_completion(r->ctx, kind, status, submitted && now > submitted ? now - submitted : 0);
	if (!c || c->gone)
		return;
	const char *ckpt = x ? x->checkpoint : NULL;
	ssize_t n = build_completion(r, rid, status, infra, msg, ckpt, ckpt ? x->checkpoint_rid : 0);
	if (n < 0 && ckpt) /* cannot happen with the bounds above; the status matters most */
		n = build_completion(r, rid, status, infra, msg, NULL, 0);
	else if (n > 0 && ckpt && r->ops->on_checkpoint)
		r->ops->on_checkpoint(r->ctx, ROUTER_CHECKPOINT_GIVEN);
	if (n > 0)
		r->ops->complete(r->ctx, c, r->build, (size_t)n);
}

void rollout__rt_complete_local(struct router *r, struct rt_client *c, uint64_t rid, int kind, int status,
				bool infra, const char *msg, uint64_t submitted, uint64_t now)
{
	complete_with(r, c, rid, kind, status, infra, msg, NULL, submitted, now);
}

void rollout__rt_complete_lost(struct router *r, struct rt_client *c, uint64_t rid, int kind, const char *msg,
			       const struct session *x, uint64_t submitted, uint64_t now)
{
	complete_with(r, c, rid, kind, rw_Status_SANDBOX_LOST, true, msg, x, submitted, now);
}

size_t rollout__rt_add_checkpoint(struct router *r, const uint8_t *buf, const struct session *x)
{
	const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(buf));
	if (!x->checkpoint || !k || rw_Completion_result_type(k) != rw_Result_NONE)
		return 0;
	const char *msg = rw_Completion_message(k);
	if (msg && strlen(msg) > sizeof(r->build) / 2)
		msg = "the pool lost the sandbox (its message was too long to pass on)";
	ssize_t n = build_completion(r, rw_Completion_request_id(k), rw_Completion_status(k),
				     rw_Completion_infra_failed(k), msg, x->checkpoint, x->checkpoint_rid);
	return n > 0 ? (size_t)n : 0;
}

/* ---- tables ---- */

struct dispatch *rollout__rt_disp_find(struct router *r, uint64_t id)
{
	for (struct dispatch *d = r->disp[bucket(id)]; d; d = d->hnext)
		if (d->id == id)
			return d;
	return NULL;
}

void rollout__rt_disp_unlink(struct router *r, struct dispatch *d)
{
	struct dispatch **pp = &r->disp[bucket(d->id)];
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	dl_del(&d->all);
	r->ndisp--;
	r->pools[d->pool].inflight--;
	r->pools[d->pool].credits++;
}

struct session *rollout__rt_sess_find(struct router *r, uint64_t sandbox)
{
	for (struct session *x = r->sess[bucket(sandbox)]; x; x = x->hnext)
		if (x->sandbox == sandbox)
			return x;
	return NULL;
}

int rollout__rt_sess_add(struct router *r, uint64_t sandbox, int pool, struct rt_client *c)
{
	struct session *x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->sandbox = sandbox;
	x->pool = pool;
	x->c = c;
	size_t h = bucket(sandbox);
	x->hnext = r->sess[h];
	r->sess[h] = x;
	dl_add(&r->sess_all, &x->all);
	r->nsess++;
	c->sessions++;
	return 0;
}

void rollout__rt_sess_remove(struct router *r, struct session *x)
{
	struct session **pp = &r->sess[bucket(x->sandbox)];
	while (*pp != x)
		pp = &(*pp)->hnext;
	*pp = x->hnext;
	dl_del(&x->all);
	if (x->lost) {
		r->nlost--;
	} else {
		r->nsess--;
		if (x->c)
			x->c->sessions--;
	}
	free(x->checkpoint);
	free(x);
}

int rollout__rt_sess_checkpoint(struct router *r, struct session *x, const char *id, uint64_t rid)
{
	size_t n = id ? strnlen(id, ROUTER_MAX_CHECKPOINT + 1) : 0;
	if (!n || n > ROUTER_MAX_CHECKPOINT)
		return -EINVAL;
	char *copy = malloc(n + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, id, n + 1);
	free(x->checkpoint);
	x->checkpoint = copy;
	x->checkpoint_rid = rid;
	if (r->ops->on_checkpoint)
		r->ops->on_checkpoint(r->ctx, ROUTER_CHECKPOINT_RECORDED);
	return 0;
}

void rollout__rt_sess_lost(struct router *r, struct session *x)
{
	if (x->lost)
		return;
	if (!x->checkpoint || !x->c || x->c->gone || x->closing) { /* nobody will ask again */
		rollout__rt_sess_remove(r, x);
		return;
	}
	x->lost = true;
	r->nsess--;
	r->nlost++;
	x->c->sessions--;
}

/* Sends a request record to a pool with a fresh dispatch id set in place, and remembers
 * it. The entry is allocated before the send, so a failure leaves nothing behind.
 * 0, -EAGAIN (the pool cannot take it now), -ENOMEM or -EINVAL (no placeholder). */
int rollout__rt_dispatch(struct router *r, struct rt_client *c, int pool, uint8_t *msg, size_t len,
			 uint64_t rid, int kind, uint64_t deadline, uint64_t submitted, uint64_t sandbox)
{
	uint64_t id = ((uint64_t)(r->cfg.shard & 0xff) << 56) | (r->next_dispatch + 1);
	if (!rw_Message_set_dispatch_id(rw_Message_root_mut(msg), id))
		return -EINVAL;
	struct dispatch *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	int rc = r->ops->pool_send(r->ctx, pool, msg, len);
	if (rc) {
		free(d);
		return rc;
	}
	r->next_dispatch++;
	*d = (struct dispatch){ .id = id,
				.c = c,
				.request_id = rid,
				.kind = kind,
				.pool = pool,
				.deadline = deadline,
				.submitted = submitted,
				.sandbox = sandbox };
	size_t h = bucket(id);
	d->hnext = r->disp[h];
	r->disp[h] = d;
	dl_add(&r->disp_all, &d->all);
	r->ndisp++;
	r->pools[pool].inflight++;
	if (r->pools[pool].credits)
		r->pools[pool].credits--;
	if (c)
		c->inflight++;
	return 0;
}

static ssize_t build_close(struct router *r, uint64_t sandbox)
{
	struct fb_builder b;
	fb_builder_init(&b, r->build, sizeof(r->build));
	rw_Close_start(&b);
	rw_Close_add_sandbox(&b, sandbox);
	fb_ref_t cl = rw_Close_end(&b);
	rw_Request_start(&b);
	rw_Request_add_action(&b, rw_Action_Close, cl);
	fb_ref_t rq = rw_Request_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, UINT64_MAX); /* placeholder, set by rollout__rt_dispatch() */
	rw_Message_add_body(&b, rw_Body_Request, rq);
	return rw_Message_finish(&b, rw_Message_end(&b));
}

/* Closes sandboxes nobody owns; those whose pool cannot take it now are retried. */
void rollout__rt_close_orphans(struct router *r, uint64_t now)
{
	for (struct orphan **pp = &r->orphans; *pp;) {
		struct orphan *o = *pp;
		if (!r->pools[o->pool].up) { /* a reset pool reaps it by its lease */
			*pp = o->next;
			free(o);
			continue;
		}
		ssize_t n = build_close(r, o->sandbox);
		if (n > 0 && rollout__rt_dispatch(r, NULL, o->pool, r->build, (size_t)n, 0, rw_Action_Close,
						  0, now, 0) != 0) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		free(o);
	}
}

void rollout__rt_orphan_add(struct router *r, int pool, uint64_t sandbox)
{
	struct orphan *o = malloc(sizeof(*o));
	if (!o) {
		RLOG(RLOG_WARN, "sandbox left to its lease", "sandbox=%llu", (unsigned long long)sandbox);
		return;
	}
	o->sandbox = sandbox;
	o->pool = pool;
	o->next = r->orphans;
	r->orphans = o;
}
