/* rolloutd's metrics (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "prom.h"
#include "promhttp.h"
#include "rollout_version.h"
#include "rollout_wire.h"

#define NKIND   (rw_Action_Snapshot + 1)
#define NSTATUS 16
#define MAXSH   64
#define MAXPOOL 64

struct rd_metrics {
	struct promhttp *http; /* first: see promhttp_object_new */
	uint32_t nshards;
	uint64_t requests[NKIND], completions[NKIND][NSTATUS], refused, attach_refused;
	uint64_t stream_sent, stream_dropped;
	uint64_t ckpt_recorded, ckpt_given;
	int64_t backlog, trainers;
	uint32_t inflight[MAXSH], sessions[MAXSH], waiting[MAXSH];
	uint32_t pool_up[MAXSH][MAXPOOL], pool_credits[MAXSH][MAXPOOL], pool_free[MAXSH][MAXPOOL];
	uint64_t ring_pending[MAXSH];
	int npools;
	struct prom_hist lat[NKIND];
};

void rd_metrics_request(struct rd_metrics *m, int kind)
{
	if (kind >= 0 && kind < NKIND)
		PROM_ADD(m->requests[kind], 1);
}

void rd_metrics_completion(struct rd_metrics *m, int kind, int status, uint64_t ns)
{
	if (kind < 0 || kind >= NKIND || status < 0 || status >= NSTATUS)
		return;
	PROM_ADD(m->completions[kind][status], 1);
	if (ns)
		prom_observe(&m->lat[kind], ns);
}

void rd_metrics_refused(struct rd_metrics *m)
{
	PROM_ADD(m->refused, 1);
}
void rd_metrics_attach_refused(struct rd_metrics *m)
{
	PROM_ADD(m->attach_refused, 1);
}
void rd_metrics_backlog(struct rd_metrics *m, int d)
{
	PROM_ADD(m->backlog, d);
}
void rd_metrics_stream(struct rd_metrics *m, bool delivered)
{
	PROM_ADD(*(delivered ? &m->stream_sent : &m->stream_dropped), 1);
}
void rd_metrics_checkpoint(struct rd_metrics *m, bool given)
{
	PROM_ADD(*(given ? &m->ckpt_given : &m->ckpt_recorded), 1);
}
void rd_metrics_trainers(struct rd_metrics *m, int d)
{
	PROM_ADD(m->trainers, d);
}

void rd_metrics_pool(struct rd_metrics *m, int shard, long pool, bool up, uint32_t credits, uint32_t free)
{
	if (shard < 0 || shard >= MAXSH || pool < 0 || pool >= MAXPOOL)
		return;
	PROM_SET(m->pool_up[shard][pool], up ? 1u : 0u);
	PROM_SET(m->pool_credits[shard][pool], credits);
	PROM_SET(m->pool_free[shard][pool], free);
	if (pool + 1 > PROM_GET(m->npools))
		PROM_SET(m->npools, (int)pool + 1);
}

void rd_metrics_ring(struct rd_metrics *m, int shard, uint64_t pending)
{
	if (shard >= 0 && shard < MAXSH)
		PROM_SET(m->ring_pending[shard], pending);
}

void rd_metrics_gauges(struct rd_metrics *m, int shard, uint32_t inflight, uint32_t sessions,
		       uint32_t waiting)
{
	if (shard < 0 || shard >= MAXSH)
		return;
	PROM_SET(m->inflight[shard], inflight);
	PROM_SET(m->sessions[shard], sessions);
	PROM_SET(m->waiting[shard], waiting);
}

static const char *kind_name(int k)
{
	const char *n = rw_Action_name((uint8_t)k);
	return n ? n : "unknown";
}

/* The actions rolloutd serves, as metric labels (Fork is in the schema, not served). */
static const int served[] = { rw_Action_Open,  rw_Action_Exec,   rw_Action_PutFile, rw_Action_GetFile,
			      rw_Action_Close, rw_Action_Signal, rw_Action_Snapshot };
#define NSERVED (sizeof(served) / sizeof(served[0]))

static void per_shard(struct prom_out *o, struct rd_metrics *m, const char *name, const char *help,
		      const uint32_t *v)
{
	prom_head(o, name, "gauge", help);
	for (uint32_t s = 0; s < m->nshards; s++)
		prom_printf(o, "%s{shard=\"%u\"} %u\n", name, s, PROM_GET(v[s]));
}

static void per_pool(struct prom_out *o, struct rd_metrics *m, const char *name, const char *help,
		     uint32_t (*v)[MAXPOOL])
{
	prom_head(o, name, "gauge", help);
	int np = PROM_GET(m->npools);
	for (uint32_t s = 0; s < m->nshards; s++)
		for (int p = 0; p < np; p++)
			prom_printf(o, "%s{shard=\"%u\",pool=\"%d\"} %u\n", name, s, p, PROM_GET(v[s][p]));
}

char *rd_metrics_render(struct rd_metrics *m, size_t *len)
{
	struct prom_out o;
	prom_out_init(&o);
	prom_build_info(&o, "rolloutd_build_info", "The running version (value 1).");
	prom_head(&o, "rolloutd_requests_total", "counter", "Requests read from trainer rings, by action.");
	for (size_t i = 0; i < NSERVED; i++)
		prom_printf(&o, "rolloutd_requests_total{action=\"%s\"} %llu\n", kind_name(served[i]),
			    (unsigned long long)PROM_GET(m->requests[served[i]]));
	prom_head(&o, "rolloutd_completions_total", "counter",
		  "Completions written to trainers, by action and status.");
	for (size_t i = 0; i < NSERVED; i++)
		for (int s = 0; s < NSTATUS; s++)
			prom_printf(&o, "rolloutd_completions_total{action=\"%s\",status=\"%s\"} %llu\n",
				    kind_name(served[i]), rw_Status_name((uint16_t)s),
				    (unsigned long long)PROM_GET(m->completions[served[i]][s]));
	prom_head(&o, "rolloutd_checkpoints_total", "counter",
		  "Sandbox checkpoints, by event (recorded: a pool's answer named one; given: a "
		  "SANDBOX_LOST completion carried one, so its task can continue from it).");
	prom_printf(&o, "rolloutd_checkpoints_total{event=\"recorded\"} %llu\n",
		    (unsigned long long)PROM_GET(m->ckpt_recorded));
	prom_printf(&o, "rolloutd_checkpoints_total{event=\"given\"} %llu\n",
		    (unsigned long long)PROM_GET(m->ckpt_given));
	prom_head(&o, "rolloutd_refused_records_total", "counter",
		  "Records and messages refused (malformed, unknown, late, from the wrong pool).");
	prom_printf(&o, "rolloutd_refused_records_total %llu\n", (unsigned long long)PROM_GET(m->refused));
	prom_head(&o, "rolloutd_attach_refused_total", "counter",
		  "Attaches refused (bad request, no request in time, no resources).");
	prom_printf(&o, "rolloutd_attach_refused_total %llu\n",
		    (unsigned long long)PROM_GET(m->attach_refused));
	prom_head(&o, "rolloutd_stream_records_total", "counter",
		  "Streamed output records, by fate (dropped: the trainer was behind or the record "
		  "too big; its completion still holds the output).");
	prom_printf(&o, "rolloutd_stream_records_total{fate=\"delivered\"} %llu\n",
		    (unsigned long long)PROM_GET(m->stream_sent));
	prom_printf(&o, "rolloutd_stream_records_total{fate=\"dropped\"} %llu\n",
		    (unsigned long long)PROM_GET(m->stream_dropped));
	prom_head(&o, "rolloutd_trainers", "gauge", "Trainers attached.");
	prom_printf(&o, "rolloutd_trainers %lld\n", (long long)PROM_GET(m->trainers));
	prom_head(&o, "rolloutd_completion_backlog", "gauge",
		  "Completions waiting for room in a trainer's ring.");
	prom_printf(&o, "rolloutd_completion_backlog %lld\n", (long long)PROM_GET(m->backlog));
	per_shard(&o, m, "rolloutd_inflight", "Requests dispatched to pools and not yet answered, per shard.",
		  m->inflight);
	per_shard(&o, m, "rolloutd_sessions", "Open sandboxes, per shard.", m->sessions);
	per_shard(&o, m, "rolloutd_open_queue", "Opens waiting for pool capacity, per shard.", m->waiting);
	per_pool(&o, m, "rolloutd_pool_up", "Whether a pool link answers (1) or is down (0).", m->pool_up);
	per_pool(&o, m, "rolloutd_pool_credits",
		 "Requests a pool link may still take (its max_inflight minus in flight).", m->pool_credits);
	per_pool(&o, m, "rolloutd_pool_free_sandboxes",
		 "Free sandboxes a pool reports, its noop profiles left out.", m->pool_free);
	prom_head(&o, "rolloutd_ring_pending_bytes", "gauge",
		  "Bytes waiting in the shard's submission rings.");
	for (uint32_t s = 0; s < m->nshards; s++)
		prom_printf(&o, "rolloutd_ring_pending_bytes{shard=\"%u\"} %llu\n", s,
			    (unsigned long long)PROM_GET(m->ring_pending[s]));
	prom_head(&o, "rolloutd_latency_seconds", "histogram", "Submit to completion, by action.");
	for (size_t i = 0; i < NSERVED; i++) {
		char labels[64];
		snprintf(labels, sizeof(labels), "action=\"%s\"", kind_name(served[i]));
		prom_hist_series(&o, "rolloutd_latency_seconds", labels, &m->lat[served[i]]);
	}
	return prom_out_take(&o, len);
}

static char *render(void *arg, size_t *len)
{
	return rd_metrics_render(arg, len);
}

int rd_metrics_start(struct rd_metrics **out, const char *addr, uint32_t nshards)
{
	int rc = promhttp_object_new((void **)out, sizeof(**out), addr, render);
	if (!rc)
		(*out)->nshards = nshards > MAXSH ? MAXSH : nshards;
	return rc;
}

void rd_metrics_stop(struct rd_metrics *m)
{
	promhttp_object_free(m);
}
