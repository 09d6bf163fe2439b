/* rollout-pool's metrics (see metrics.h). Label sets are bounded: status and action kind
 * come from the schema's enums, nothing is labelled per request, sandbox or coordinator. */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "promhttp.h"
#include "rollout_version.h"
#include "rollout_wire.h"

#define NSTATUS 16
#define NKIND   8

struct pool_metrics {
	struct promhttp *http; /* first: see promhttp_object_new */
	uint64_t completions[NSTATUS];
	uint64_t requests[NKIND];
	uint64_t refused, duplicates, lease_expired, create_failed, create_timeouts, deferred, dropped;
	uint64_t chunks_sent, chunks_dropped;
	int64_t sandboxes;
	uint64_t warm, leased, inflight, coordinators;
	struct prom_hist create, exec, snapshot;
	uint64_t snapshots_ok, snapshots_failed, snapshot_bytes, frozen_us_max;
	uint64_t store_count, store_bytes, store_evicted;
	/* Per profile: name set once (before nprof covers it, with release), values relaxed. */
	struct {
		const char *name;
		bool noop;
		uint64_t warm, leased, free;
		uint64_t img_state, img_done, img_total; /* img_state 0: no image */
	} prof[POOL_METRICS_PROFILES];
	size_t nprof;
};

void pool_metrics_profile(struct pool_metrics *m, size_t i, const char *name, bool noop, uint32_t warm,
			  uint32_t leased, uint32_t free)
{
	if (!m || i >= POOL_METRICS_PROFILES)
		return;
	if (i >= __atomic_load_n(&m->nprof, __ATOMIC_ACQUIRE)) {
		m->prof[i].name = name;
		m->prof[i].noop = noop;
		__atomic_store_n(&m->nprof, i + 1, __ATOMIC_RELEASE);
	}
	PROM_SET(m->prof[i].warm, warm);
	PROM_SET(m->prof[i].leased, leased);
	PROM_SET(m->prof[i].free, free);
}

/* A label value as the exposition format wants it: \\, \" and \n escaped. */
static const char *label_esc(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	for (; *s && n + 3 < cap; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			out[n++] = '\\';
			out[n++] = *s == '\n' ? 'n' : *s;
		} else {
			out[n++] = *s;
		}
	}
	out[n] = 0;
	return out;
}

static void per_profile(struct prom_out *o, struct pool_metrics *m, const char *name, const char *help,
			size_t field)
{
	prom_head(o, name, "gauge", help);
	size_t n = __atomic_load_n(&m->nprof, __ATOMIC_ACQUIRE);
	char esc[200];
	for (size_t i = 0; i < n; i++) {
		const uint64_t *v = (const uint64_t *)((const char *)&m->prof[i] + field);
		prom_printf(o, "%s{profile=\"%s\",type=\"%s\"} %llu\n", name,
			    label_esc(esc, sizeof(esc), m->prof[i].name),
			    m->prof[i].noop ? "noop" : "isolated", (unsigned long long)PROM_GET(*v));
	}
}

void pool_metrics_completion(struct pool_metrics *m, int status)
{
	if (m && status >= 0 && status < NSTATUS)
		PROM_ADD(m->completions[status], 1);
}
void pool_metrics_request(struct pool_metrics *m, int kind)
{
	if (m && kind >= 0 && kind < NKIND)
		PROM_ADD(m->requests[kind], 1);
}
void pool_metrics_refused(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->refused, 1);
}
void pool_metrics_duplicate(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->duplicates, 1);
}
void pool_metrics_lease_expired(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->lease_expired, 1);
}
void pool_metrics_create_failed(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->create_failed, 1);
}
void pool_metrics_create_timeout(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->create_timeouts, 1);
}
void pool_metrics_send_deferred(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->deferred, 1);
}
void pool_metrics_answer_dropped(struct pool_metrics *m)
{
	if (m)
		PROM_ADD(m->dropped, 1);
}
void pool_metrics_stream_chunk(struct pool_metrics *m, bool sent)
{
	if (m)
		PROM_ADD(*(sent ? &m->chunks_sent : &m->chunks_dropped), 1);
}
void pool_metrics_sandboxes(struct pool_metrics *m, int delta)
{
	if (m)
		PROM_ADD(m->sandboxes, delta);
}
void pool_metrics_create_ns(struct pool_metrics *m, uint64_t ns)
{
	if (m)
		prom_observe(&m->create, ns);
}
void pool_metrics_exec_ns(struct pool_metrics *m, uint64_t ns)
{
	if (m)
		prom_observe(&m->exec, ns);
}
void pool_metrics_snapshot(struct pool_metrics *m, bool ok, uint64_t ns, uint64_t frozen_us, uint64_t bytes)
{
	if (!m)
		return;
	PROM_ADD(*(ok ? &m->snapshots_ok : &m->snapshots_failed), 1);
	if (!ok)
		return;
	prom_observe(&m->snapshot, ns);
	PROM_ADD(m->snapshot_bytes, bytes);
	if (frozen_us > PROM_GET(m->frozen_us_max))
		PROM_SET(m->frozen_us_max, frozen_us);
}

void pool_metrics_store(struct pool_metrics *m, uint64_t count, uint64_t bytes, uint64_t evicted)
{
	if (!m)
		return;
	PROM_SET(m->store_count, count);
	PROM_SET(m->store_bytes, bytes);
	PROM_SET(m->store_evicted, evicted);
}

void pool_metrics_image(struct pool_metrics *m, size_t i, int state, uint64_t done, uint64_t total)
{
	if (!m || i >= POOL_METRICS_PROFILES)
		return;
	PROM_SET(m->prof[i].img_state, (uint64_t)state);
	PROM_SET(m->prof[i].img_done, done);
	PROM_SET(m->prof[i].img_total, total);
}

void pool_metrics_gauges(struct pool_metrics *m, uint32_t warm, uint32_t leased, uint32_t inflight,
			 uint32_t coordinators)
{
	if (!m)
		return;
	PROM_SET(m->warm, warm);
	PROM_SET(m->leased, leased);
	PROM_SET(m->inflight, inflight);
	PROM_SET(m->coordinators, coordinators);
}

static void scalar(struct prom_out *o, const char *name, const char *type, const char *help,
		   unsigned long long v)
{
	prom_head(o, name, type, help);
	prom_printf(o, "%s %llu\n", name, v);
}

char *pool_metrics_render(struct pool_metrics *m, size_t *len)
{
	struct prom_out o;
	prom_out_init(&o);
	prom_build_info(&o, "rollout_build_info", "Version of the running rollout-pool.");
	prom_head(&o, "rollout_pool_requests_total", "counter", "Requests received, by action.");
	for (int k = 1; k < NKIND; k++) {
		const char *name = rw_Action_name((uint8_t)k);
		if (name && strcmp(name, "NONE") != 0)
			prom_printf(&o, "rollout_pool_requests_total{action=\"%s\"} %llu\n", name,
				    (unsigned long long)PROM_GET(m->requests[k]));
	}
	prom_head(&o, "rollout_pool_completions_total", "counter", "Completions sent, by status.");
	for (int s = 0; s < NSTATUS; s++)
		prom_printf(&o, "rollout_pool_completions_total{status=\"%s\"} %llu\n",
			    rw_Status_name((uint16_t)s), (unsigned long long)PROM_GET(m->completions[s]));
	scalar(&o, "rollout_pool_refused_total", "counter", "Malformed or unexpected messages dropped.",
	       PROM_GET(m->refused));
	scalar(&o, "rollout_pool_duplicate_dispatches_total", "counter",
	       "Dispatches seen again and answered from the cache.", PROM_GET(m->duplicates));
	scalar(&o, "rollout_pool_leases_expired_total", "counter",
	       "Sandboxes reaped because their coordinator went silent.", PROM_GET(m->lease_expired));
	scalar(&o, "rollout_pool_create_failures_total", "counter", "Sandbox creations that failed.",
	       PROM_GET(m->create_failed));
	scalar(&o, "rollout_pool_create_timeouts_total", "counter",
	       "Sandbox creations the zygote did not answer in time.", PROM_GET(m->create_timeouts));
	scalar(&o, "rollout_pool_answers_deferred_total", "counter",
	       "Answers the coordinator could not take at once, kept and sent again.", PROM_GET(m->deferred));
	scalar(&o, "rollout_pool_answers_dropped_total", "counter",
	       "Undelivered answers given up when their coordinator's lease expired.", PROM_GET(m->dropped));
	scalar(&o, "rollout_pool_stream_chunks_total", "counter",
	       "Streamed output records sent to coordinators.", PROM_GET(m->chunks_sent));
	scalar(&o, "rollout_pool_stream_chunks_dropped_total", "counter",
	       "Streamed output records dropped because the coordinator was behind (the completion "
	       "still holds the output).",
	       PROM_GET(m->chunks_dropped));
	prom_head(&o, "rollout_pool_sandboxes", "gauge", "Sandboxes that exist (creating, warm or leased).");
	prom_printf(&o, "rollout_pool_sandboxes %lld\n", (long long)PROM_GET(m->sandboxes));
	scalar(&o, "rollout_pool_warm_sandboxes", "gauge", "Sandboxes ready to claim.", PROM_GET(m->warm));
	scalar(&o, "rollout_pool_leased_sandboxes", "gauge", "Sandboxes owned by a coordinator.",
	       PROM_GET(m->leased));
	scalar(&o, "rollout_pool_inflight_actions", "gauge", "Actions running in sandboxes.",
	       PROM_GET(m->inflight));
	scalar(&o, "rollout_pool_coordinators", "gauge", "Coordinator connections the pool keeps state for.",
	       PROM_GET(m->coordinators));
	per_profile(&o, m, "rollout_pool_profile_warm_sandboxes", "Sandboxes ready to claim, per profile.",
		    offsetof(__typeof__(m->prof[0]), warm));
	per_profile(&o, m, "rollout_pool_profile_leased_sandboxes",
		    "Sandboxes owned by a coordinator, per profile.",
		    offsetof(__typeof__(m->prof[0]), leased));
	per_profile(&o, m, "rollout_pool_profile_free_sandboxes",
		    "Sandboxes the profile may still give out (max minus leased and waiting), per profile; "
		    "type=\"noop\" has no sandbox behind it.",
		    offsetof(__typeof__(m->prof[0]), free));
	prom_head(&o, "rollout_pool_image_state", "gauge",
		  "Image profiles: 1 unpacking, 2 ready, 3 refused (the log says why).");
	char esc[200];
	size_t np = __atomic_load_n(&m->nprof, __ATOMIC_ACQUIRE);
	for (size_t i = 0; i < np; i++)
		if (PROM_GET(m->prof[i].img_state))
			prom_printf(&o, "rollout_pool_image_state{profile=\"%s\"} %llu\n",
				    label_esc(esc, sizeof(esc), m->prof[i].name),
				    (unsigned long long)PROM_GET(m->prof[i].img_state));
	prom_head(&o, "rollout_pool_image_unpacked_bytes", "gauge",
		  "Image profiles: bytes of the layers read so far (of rollout_pool_image_bytes).");
	for (size_t i = 0; i < np; i++)
		if (PROM_GET(m->prof[i].img_state))
			prom_printf(&o, "rollout_pool_image_unpacked_bytes{profile=\"%s\"} %llu\n",
				    label_esc(esc, sizeof(esc), m->prof[i].name),
				    (unsigned long long)PROM_GET(m->prof[i].img_done));
	prom_head(&o, "rollout_pool_image_bytes", "gauge", "Image profiles: bytes of the layers to read.");
	for (size_t i = 0; i < np; i++)
		if (PROM_GET(m->prof[i].img_state))
			prom_printf(&o, "rollout_pool_image_bytes{profile=\"%s\"} %llu\n",
				    label_esc(esc, sizeof(esc), m->prof[i].name),
				    (unsigned long long)PROM_GET(m->prof[i].img_total));
	prom_head(&o, "rollout_pool_snapshots_total", "counter", "Snapshots taken, by result.");
	prom_printf(&o, "rollout_pool_snapshots_total{result=\"ok\"} %llu\n",
		    (unsigned long long)PROM_GET(m->snapshots_ok));
	prom_printf(&o, "rollout_pool_snapshots_total{result=\"failed\"} %llu\n",
		    (unsigned long long)PROM_GET(m->snapshots_failed));
	scalar(&o, "rollout_pool_snapshot_captured_bytes_total", "counter", "Bytes captured by snapshots.",
	       PROM_GET(m->snapshot_bytes));
	prom_head(&o, "rollout_pool_snapshot_frozen_max_seconds", "gauge",
		  "The longest a sandbox stayed frozen for a snapshot.");
	prom_printf(&o, "rollout_pool_snapshot_frozen_max_seconds %.6f\n",
		    (double)PROM_GET(m->frozen_us_max) / 1e6);
	scalar(&o, "rollout_pool_snapshot_store_snapshots", "gauge", "Snapshots in the store.",
	       PROM_GET(m->store_count));
	scalar(&o, "rollout_pool_snapshot_store_bytes", "gauge", "Bytes of the snapshots in the store.",
	       PROM_GET(m->store_bytes));
	scalar(&o, "rollout_pool_snapshot_store_evictions_total", "counter",
	       "Snapshots removed by the collector (past snapshot_ttl_s, or over snapshot_budget_mb).",
	       PROM_GET(m->store_evicted));
	prom_head(&o, "rollout_pool_snapshot_seconds", "histogram", "Snapshots, freeze to published.");
	prom_hist_series(&o, "rollout_pool_snapshot_seconds", "", &m->snapshot);
	prom_head(&o, "rollout_pool_sandbox_create_seconds", "histogram",
		  "Time to create a sandbox with full isolation.");
	prom_hist_series(&o, "rollout_pool_sandbox_create_seconds", "", &m->create);
	prom_head(&o, "rollout_pool_exec_seconds", "histogram", "Exec actions, dispatch to answer.");
	prom_hist_series(&o, "rollout_pool_exec_seconds", "", &m->exec);
	return prom_out_take(&o, len);
}

static char *render(void *arg, size_t *len)
{
	return pool_metrics_render(arg, len);
}

int pool_metrics_start(struct pool_metrics **out, const char *addr, const char *identity)
{
	(void)identity;
	return promhttp_object_new((void **)out, sizeof(**out), addr, render);
}

void pool_metrics_stop(struct pool_metrics *m)
{
	promhttp_object_free(m);
}
