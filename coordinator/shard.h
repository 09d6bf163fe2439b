/* rolloutd internals: the daemon (attach server, shards) and its metrics. */
#ifndef ROLLOUT_COORDINATOR_SHARD_H
#define ROLLOUT_COORDINATOR_SHARD_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct rd;

/* Creates the daemon: ZeroMQ context, one shard thread per cfg->shards (each with links to
 * every pool), the attach socket and the metrics endpoint. */
int rd_create(struct rd **out, const struct rd_cfg *cfg, char *err, size_t errsz);
/* Serves attaches until *stop, then drains (in-flight work gets drain_ms) and returns. */
int rd_run(struct rd *d, volatile int *stop);
void rd_destroy(struct rd *d);

#endif
