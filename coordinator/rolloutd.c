/* rolloutd, the daemon: the ZeroMQ context, the placement plan, the shards, the attach
 * server on the main thread and the metrics endpoint. Every request read from a trainer's
 * ring completes exactly once: with the pool's answer, or TIMEOUT at its deadline, or
 * SANDBOX_LOST when its pool stops answering, or locally (see router.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "attach.h"
#include "log.h"
#include "metrics.h"
#include "pin.h"
#include "rollout/error.h"
#include "shard.h"
#include "trainer.h"
#include "util.h"

struct rd {
	const struct rd_cfg *cfg;
	void *zctx;
	struct shard *shards;
	uint32_t nshards;
	uint64_t epoch;
	struct rd_metrics *m;
	struct pin_topo topo;
	bool have_topo;
	struct attach *attach;
	struct loop *loop;
	char *last_dns; /* the endpoints the last refresh found, one per line */
};

static int memory_node(void *arg, uint32_t shard)
{
	struct rd *d = arg;
	return d->shards[shard].memory_node;
}

static void handoff(void *arg, uint32_t shard, struct trainer *t)
{
	struct rd *d = arg;
	shard_handoff(&d->shards[shard], t);
}

static void refused(void *arg)
{
	rd_metrics_attach_refused(((struct rd *)arg)->m);
}

/* Placement: each shard on a core of its GPU's NUMA node, its rings' pages there too. */
static int place(struct rd *d, char *err, size_t errsz)
{
	const struct rd_cfg *cfg = d->cfg;
	struct pin_plan plan = { 0 };
	if (pin_topo_load(&d->topo, NULL, NULL) != 0)
		return 0; /* no topology: nothing pinned, a sensible default */
	d->have_topo = true;
	const char *ids[64];
	struct pin_request rq;
	rd_config_pin_request(cfg, ids, &rq);
	char perr[256];
	int rc = pin_plan_make(&d->topo, &rq, &plan, perr, sizeof(perr));
	if (rc) {
		snprintf(err, errsz, "placement: %s", perr);
		return rc;
	}
	for (int w = 0; w < plan.nwarnings; w++)
		RLOG(RLOG_WARN, "placement", "warning=\"%s\"", plan.warnings[w]);
	for (uint32_t i = 0; i < d->nshards && plan.ngpus; i++) {
		struct shard *s = &d->shards[i];
		const struct pin_gpu *g = &plan.gpus[i % (uint32_t)plan.ngpus];
		s->ncpus = g->nshard_cpus;
		memcpy(s->cpus, g->shard_cpus, sizeof(s->cpus));
		s->memory_node = g->memory_node;
		s->topo = &d->topo;
	}
	pin_plan_free(&plan);
	return 0;
}

/* The main thread looks dns: names up again (the resolver may block: never on a shard) and
 * gives the shards the new set when it changed. A name that does not resolve at all keeps
 * the set as it was: a resolver outage must not retire every pool. */
static void dns_refresh(void *arg, uint64_t now)
{
	struct rd *d = arg;
	struct poollink *v;
	int n, unresolved;
	(void)now;
	if (poollink_resolve(d->cfg, &v, &n, &unresolved))
		return;
	size_t cap = (size_t)n * 260 + 1, len = 0;
	char *set = unresolved ? NULL : malloc(cap);
	if (set)
		set[0] = 0;
	for (int i = 0; set && i < n; i++)
		len += (size_t)snprintf(set + len, cap - len, "%s\n", v[i].endpoint);
	if (set && (!d->last_dns || strcmp(set, d->last_dns))) {
		if (d->last_dns)
			RLOG(RLOG_INFO, "pool addresses changed", "pools=%d", n);
		for (uint32_t i = 0; i < d->nshards; i++)
			shard_update_links(&d->shards[i], v, n);
		free(d->last_dns);
		d->last_dns = set;
		set = NULL;
	}
	free(set);
	free(v);
}

int rd_create(struct rd **out, const struct rd_cfg *cfg, char *err, size_t errsz)
{
	struct rd *d = malloc(sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct rd){ .cfg = cfg, .epoch = rollout__now_ns() ^ ((uint64_t)getpid() << 40) };
	d->nshards = cfg->shards;
	int rc = -ENOMEM;
	d->shards = calloc(d->nshards, sizeof(*d->shards));
	if (!d->shards || !(d->zctx = zmq_ctx_new()))
		goto fail;
	for (uint32_t i = 0; i < d->nshards; i++) {
		d->shards[i].memory_node = -1;
		d->shards[i].handoff = -1;
	}
	if ((rc = rd_metrics_start(&d->m, cfg->metrics, d->nshards))) {
		snprintf(err, errsz, "metrics endpoint %s: %s", cfg->metrics, rollout_strerror(rc));
		goto fail;
	}
	if ((rc = place(d, err, errsz)))
		goto fail;
	for (uint32_t i = 0; i < d->nshards; i++) {
		if ((rc = shard_init(&d->shards[i], (int)i, cfg, d->zctx, d->m, d->epoch, err, errsz))) {
			if (!err[0])
				snprintf(err, errsz, "shard %u: %s", i, rollout_strerror(rc));
			goto fail;
		}
	}
	if ((rc = loop_create(&d->loop)))
		goto fail;
	struct attach_ops ops = { .nshards = d->nshards,
				  .memory_node = memory_node,
				  .handoff = handoff,
				  .refused = refused,
				  .arg = d };
	if ((rc = attach_open(&d->attach, cfg, d->epoch, &ops, err, errsz)))
		goto fail;
	if ((rc = attach_start(d->attach, d->loop))) {
		snprintf(err, errsz, "attach server: %s", rollout_strerror(rc));
		goto fail;
	}
	for (unsigned i = 0; i < cfg->pools_count; i++)
		if (cfg->pools[i].dns) {
			if ((rc = loop_every(d->loop, ROLLOUT_MS(cfg->dns_refresh_ms), dns_refresh, d)))
				goto fail;
			break;
		}
	*out = d;
	return 0;
fail:
	rd_destroy(d);
	return rc;
}

int rd_run(struct rd *d, atomic_int *stop, char *err, size_t errsz)
{
	int rc = 0;
	for (uint32_t i = 0; i < d->nshards && !rc; i++)
		if ((rc = shard_start(&d->shards[i], stop)))
			snprintf(err, errsz, "cannot start shard %u: %s", i, strerror(-rc));
	if (rc) {
		atomic_store(stop, 1); /* the shards already running drain and stop */
	} else {
		RLOG(RLOG_INFO, "rolloutd serving", "socket=%s shards=%u pools=%d", d->cfg->socket,
		     d->nshards, d->shards[0].nlinks);
	}
	while (!atomic_load(stop)) {
		int n = loop_run_once(d->loop, 200);
		if (n < 0) {
			snprintf(err, errsz, "attach loop: %s", rollout_strerror(n));
			atomic_store(stop, 1);
			rc = n;
		}
	}
	if (!rc)
		RLOG(RLOG_INFO, "draining", "drain_ms=%u", d->cfg->drain_ms);
	for (uint32_t i = 0; i < d->nshards; i++)
		shard_join(&d->shards[i]);
	RLOG(RLOG_INFO, "rolloutd stopped", "shards=%u", d->nshards);
	return rc;
}

void rd_destroy(struct rd *d)
{
	if (!d)
		return;
	attach_close(d->attach);
	loop_destroy(d->loop);
	for (uint32_t i = 0; d->shards && i < d->nshards; i++)
		if (d->shards[i].loop)
			shard_fini(&d->shards[i]);
	free(d->shards);
	if (d->have_topo)
		pin_topo_free(&d->topo);
	if (d->zctx)
		zmq_ctx_term(d->zctx);
	rd_metrics_stop(d->m);
	free(d->last_dns);
	free(d);
}
