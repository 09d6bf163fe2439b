/* rollout-gateway metrics: requests by route and status class with latency histograms,
 * sandbox lifecycle events, command outcomes by rolloutd status, and gauges read at
 * scrape time. Served as Prometheus text on /metrics of the gateway's port. Labels are
 * bounded: route names and status classes from fixed tables. */
#ifndef ROLLOUT_GATEWAY_METRICS_H
#define ROLLOUT_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "route.h"

struct gw;
struct gw_metrics;

enum gw_sb_event { GW_SB_CREATED, GW_SB_KILLED, GW_SB_EXPIRED, GW_SB_CREATE_FAILED, GW_SB__COUNT };

struct gw_metrics *gw_metrics_new(void);
void gw_metrics_free(struct gw_metrics *m);
void gw_metrics_request(struct gw_metrics *m, enum gw_route_kind route, unsigned status, uint64_t ns);
void gw_metrics_sandbox(struct gw_metrics *m, enum gw_sb_event e);
/* A command's exec completed with this rolloutd status (rollout.wire.Status). */
void gw_metrics_exec(struct gw_metrics *m, int status, uint64_t ns);
void gw_metrics_streams(struct gw_metrics *m, int delta);
/* The exposition text (malloc'd, caller frees). */
char *gw_metrics_render(struct gw *g, size_t *len);

#endif
