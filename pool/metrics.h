/* rollout-pool's metrics: counters, gauges and histograms updated by the event loop with
 * relaxed atomics, rendered as Prometheus text (common/prom.h) and served on /metrics and
 * /healthz by common/promhttp.h on its own thread. Every update function accepts NULL. */
#ifndef ROLLOUT_POOL_METRICS_H
#define ROLLOUT_POOL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool_metrics;

/* addr "HOST:PORT" or NULL for no endpoint (metrics are still collected). 0, -ENOMEM,
 * -EINVAL (bad address) or -EADDRINUSE. */
int pool_metrics_start(struct pool_metrics **m, const char *addr, const char *identity);
void pool_metrics_stop(struct pool_metrics *m);
/* The exposition text (malloc'ed, the caller frees) or NULL. */
char *pool_metrics_render(struct pool_metrics *m, size_t *len);

void pool_metrics_completion(struct pool_metrics *m, int status);
void pool_metrics_request(struct pool_metrics *m, int kind);
void pool_metrics_refused(struct pool_metrics *m);
void pool_metrics_duplicate(struct pool_metrics *m);
void pool_metrics_lease_expired(struct pool_metrics *m);
void pool_metrics_create_failed(struct pool_metrics *m);
void pool_metrics_create_timeout(struct pool_metrics *m);
/* An answer the ROUTER could not take (peer unreachable or queue full): kept and retried. */
void pool_metrics_send_deferred(struct pool_metrics *m);
/* An undelivered answer given up because its coordinator's lease expired. */
void pool_metrics_answer_dropped(struct pool_metrics *m);
/* A streamed output record: sent, or dropped (the coordinator was behind). */
void pool_metrics_stream_chunk(struct pool_metrics *m, bool sent);
void pool_metrics_sandboxes(struct pool_metrics *m, int delta);
void pool_metrics_create_ns(struct pool_metrics *m, uint64_t ns);
void pool_metrics_exec_ns(struct pool_metrics *m, uint64_t ns);
/* A snapshot taken (ok) or failed: its time, how long the sandbox stayed frozen, its size. */
void pool_metrics_snapshot(struct pool_metrics *m, bool ok, uint64_t ns, uint64_t frozen_us, uint64_t bytes);
/* The snapshot store as the collector last saw it; evicted counts removals so far. */
void pool_metrics_store(struct pool_metrics *m, uint64_t count, uint64_t bytes, uint64_t evicted);
/* An image profile: state (env.h enum env_img_state) and bytes of its layers read so far. */
void pool_metrics_image(struct pool_metrics *m, size_t i, int state, uint64_t done, uint64_t total);
void pool_metrics_gauges(struct pool_metrics *m, uint32_t warm, uint32_t leased, uint32_t inflight,
			 uint32_t coordinators);
/* Profile i (below POOL_METRICS_PROFILES; others are not shown) by name, the label of its
 * series: name must outlive the metrics; noop profiles have no sandboxes behind their counts. */
#define POOL_METRICS_PROFILES 64
void pool_metrics_profile(struct pool_metrics *m, size_t i, const char *name, bool noop, uint32_t warm,
			  uint32_t leased, uint32_t free);

#endif
