/* rollout-gateway metrics (see metrics.h). Single-threaded: only the event thread updates
 * and renders them. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

#define NCLASS  5 /* 1xx..5xx */
#define NSTATUS 16
#define NBUCKET 14

static const double bounds[NBUCKET] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					0.1,    0.25,  0.5,    1,     2.5,  5,     10 };

struct hist {
	uint64_t b[NBUCKET], count, sum_ns;
};

struct gw_metrics {
	uint64_t req[GW_R__COUNT][NCLASS];
	struct hist lat[GW_R__COUNT];
	uint64_t sb[GW_SB__COUNT];
	uint64_t exec[NSTATUS];
	struct hist exec_lat;
	int64_t streams;
};

struct gw_metrics *gw_metrics_new(void)
{
	return calloc(1, sizeof(struct gw_metrics));
}

void gw_metrics_free(struct gw_metrics *m)
{
	free(m);
}

static void observe(struct hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	for (int i = 0; i < NBUCKET; i++)
		if (s <= bounds[i]) {
			h->b[i]++;
			break;
		}
	h->count++;
	h->sum_ns += ns;
}

void gw_metrics_request(struct gw_metrics *m, enum gw_route_kind r, unsigned status, uint64_t ns)
{
	if ((unsigned)r >= GW_R__COUNT || status < 100 || status > 599)
		return;
	m->req[r][status / 100 - 1]++;
	observe(&m->lat[r], ns);
}

void gw_metrics_sandbox(struct gw_metrics *m, enum gw_sb_event e)
{
	if ((unsigned)e < GW_SB__COUNT)
		m->sb[e]++;
}

void gw_metrics_exec(struct gw_metrics *m, int status, uint64_t ns)
{
	if (status < 0 || status >= NSTATUS)
		return;
	m->exec[status]++;
	observe(&m->exec_lat, ns);
}

void gw_metrics_streams(struct gw_metrics *m, int d)
{
	m->streams += d;
}

struct out {
	char *p;
	size_t len, cap;
	int err;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->err = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *np = realloc(o->p, cap);
		if (!np) {
			o->err = 1;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
}

static void hist(struct out *o, const char *name, const char *labels, const struct hist *h)
{
	uint64_t cum = 0;
	for (int i = 0; i < NBUCKET; i++) {
		cum += h->b[i];
		put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "", bounds[i],
		    (unsigned long long)cum);
	}
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
	    (unsigned long long)h->count);
	put(o, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (double)h->sum_ns / 1e9);
	put(o, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
	    (unsigned long long)h->count);
}

char *gw_metrics_render(struct gw *g, size_t *len)
{
	struct gw_metrics *m = g->m;
	struct out o = { .cap = 16384 };
	if (!(o.p = malloc(o.cap)))
		return NULL;
	static const char *const ev[GW_SB__COUNT] = { "created", "killed", "expired", "create_failed" };
	put(&o, "# HELP rollout_gateway_requests_total HTTP requests answered, by route and status class.\n"
		"# TYPE rollout_gateway_requests_total counter\n");
	for (int r = 0; r < GW_R__COUNT; r++)
		for (int c = 0; c < NCLASS; c++)
			if (m->req[r][c])
				put(&o, "rollout_gateway_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
				    gw_route_name(r), c + 1, (unsigned long long)m->req[r][c]);
	put(&o, "# HELP rollout_gateway_request_seconds Time from request to answer (first byte of a "
		"stream), by route.\n"
		"# TYPE rollout_gateway_request_seconds histogram\n");
	for (int r = 0; r < GW_R__COUNT; r++)
		if (m->lat[r].count) {
			char l[64];
			snprintf(l, sizeof(l), "route=\"%s\"", gw_route_name(r));
			hist(&o, "rollout_gateway_request_seconds", l, &m->lat[r]);
		}
	put(&o, "# HELP rollout_gateway_sandbox_events_total Sandbox lifecycle events.\n"
		"# TYPE rollout_gateway_sandbox_events_total counter\n");
	for (int e = 0; e < GW_SB__COUNT; e++)
		put(&o, "rollout_gateway_sandbox_events_total{event=\"%s\"} %llu\n", ev[e],
		    (unsigned long long)m->sb[e]);
	put(&o,
	    "# HELP rollout_gateway_commands_total Commands completed by rolloutd, by completion status.\n"
	    "# TYPE rollout_gateway_commands_total counter\n");
	for (int s = 0; s < NSTATUS; s++)
		if (m->exec[s])
			put(&o, "rollout_gateway_commands_total{status=\"%s\"} %llu\n",
			    rollout_status_name(s), (unsigned long long)m->exec[s]);
	put(&o, "# HELP rollout_gateway_command_seconds Submit to completion time of commands.\n"
		"# TYPE rollout_gateway_command_seconds histogram\n");
	hist(&o, "rollout_gateway_command_seconds", "", &m->exec_lat);
	put(&o,
	    "# HELP rollout_gateway_sandboxes Live sandboxes.\n# TYPE rollout_gateway_sandboxes gauge\n"
	    "rollout_gateway_sandboxes %zu\n",
	    g->reg.count);
	put(&o,
	    "# HELP rollout_gateway_inflight Requests in flight at rolloutd.\n# TYPE "
	    "rollout_gateway_inflight gauge\n"
	    "rollout_gateway_inflight %zu\n",
	    g->be.inflight);
	put(&o,
	    "# HELP rollout_gateway_backlog Requests waiting for space in the submission ring.\n"
	    "# TYPE rollout_gateway_backlog gauge\nrollout_gateway_backlog %zu\n",
	    g->be.backlog);
	put(&o,
	    "# HELP rollout_gateway_streams Open command streams.\n# TYPE rollout_gateway_streams gauge\n"
	    "rollout_gateway_streams %lld\n",
	    (long long)m->streams);
	if (o.err) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}
