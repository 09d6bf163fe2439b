/* rolloutd metrics: counters, gauges and latency histograms updated by the shards with
 * relaxed atomics and rendered as Prometheus text on the HTTP thread (common/promhttp).
 * Labels are bounded: action and status from the schema, shard and pool index. */
#ifndef ROLLOUT_COORDINATOR_METRICS_H
#define ROLLOUT_COORDINATOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_metrics;

/* addr "HOST:PORT" or NULL (collected, not served). 0, -ENOMEM, -EINVAL or -EADDRINUSE. */
int rd_metrics_start(struct rd_metrics **m, const char *addr, uint32_t nshards);
void rd_metrics_stop(struct rd_metrics *m);
/* The exposition text (caller frees), or NULL. */
char *rd_metrics_render(struct rd_metrics *m, size_t *len);

void rd_metrics_request(struct rd_metrics *m, int kind);
void rd_metrics_completion(struct rd_metrics *m, int kind, int status, uint64_t latency_ns);
void rd_metrics_refused(struct rd_metrics *m);
void rd_metrics_attach_refused(struct rd_metrics *m);
void rd_metrics_backlog(struct rd_metrics *m, int delta);
/* A streamed output record for a trainer: put in its ring, or dropped. */
void rd_metrics_stream(struct rd_metrics *m, bool delivered);
/* A checkpoint recorded from a pool's answer (given false), or put on a SANDBOX_LOST
 * completion for a trainer (given true). */
void rd_metrics_checkpoint(struct rd_metrics *m, bool given);
void rd_metrics_trainers(struct rd_metrics *m, int delta);
void rd_metrics_pool(struct rd_metrics *m, int shard, long pool, bool up, uint32_t credits, uint32_t free);
/* Per tick: bytes waiting in the shard's trainers' submission rings. */
void rd_metrics_ring(struct rd_metrics *m, int shard, uint64_t pending);
void rd_metrics_gauges(struct rd_metrics *m, int shard, uint32_t inflight, uint32_t sessions,
		       uint32_t waiting);

#endif
