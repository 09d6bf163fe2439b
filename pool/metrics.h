/* rollout-pool metrics: counters and histograms updated by the event loop, served as
 * Prometheus text on /metrics (and /healthz) by libmicrohttpd. Every function accepts NULL. */
#ifndef ROLLOUT_POOL_METRICS_H
#define ROLLOUT_POOL_METRICS_H

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct pool_metrics;

/* addr "HOST:PORT" (IPv4) or NULL for no endpoint (metrics still collected). */
int pool_metrics_start(struct pool_metrics **m, const char *addr, const char *identity);
void pool_metrics_stop(struct pool_metrics *m);
/* The exposition text; the caller frees it. */
char *pool_metrics_render(struct pool_metrics *m, size_t *len);

void pool_metrics_completion(struct pool_metrics *m, int status);
void pool_metrics_request(struct pool_metrics *m, int kind);
void pool_metrics_refused(struct pool_metrics *m);
void pool_metrics_duplicate(struct pool_metrics *m);
void pool_metrics_lease_expired(struct pool_metrics *m);
void pool_metrics_create_failed(struct pool_metrics *m);
void pool_metrics_sandboxes(struct pool_metrics *m, int delta);
void pool_metrics_create_ns(struct pool_metrics *m, uint64_t ns);
void pool_metrics_exec_ns(struct pool_metrics *m, uint64_t ns);
void pool_metrics_gauges(struct pool_metrics *m, uint32_t warm, uint32_t leased, uint32_t inflight);

#endif
