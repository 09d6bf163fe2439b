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
	s->waiting = r->nwait;
}

/* ---- completions rolloutd makes itself ---- */

void rollout__rt_complete_local(struct router *r, struct rt_client *c, uint64_t rid, int kind, int status,
				bool infra, const char *msg, uint64_t submitted, uint64_t now)
{
	r->ops->on_completion(r->ctx, kind, status, submitted && now > submitted ? now - submitted : 0);
	if (!c || c->gone)
		return;
	struct fb_builder b;
	fb_builder_init(&b, r->build, sizeof(r->build));
	struct rw_completion k = {
		.request_id = rid, .status = (uint16_t)status, .infra_failed = infra, .message = msg
	};
	ssize_t n = rw_completion_build(&b, &k);
	if (n > 0)
		r->ops->complete(r->ctx, c, r->build, (size_t)n);
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
	r->nsess--;
	if (x->c)
		x->c->sessions--;
	free(x);
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
