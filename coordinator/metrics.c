/* rolloutd's Prometheus endpoint (see metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout_wire.h"

#define NKIND   8
#define NSTATUS 16
#define NBUCKET 16
#define MAXSH   64
#define MAXPOOL 64

static const double bounds[NBUCKET] = { 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
					0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1,     5 };

struct hist {
	uint64_t b[NBUCKET], count, sum_ns;
};

struct rd_metrics {
	struct MHD_Daemon *http;
	uint32_t nshards;
	uint64_t requests[NKIND], completions[NKIND][NSTATUS], refused;
	int64_t backlog, trainers;
	uint32_t inflight[MAXSH], sessions[MAXSH], waiting[MAXSH];
	uint32_t pool_up[MAXSH][MAXPOOL], pool_credits[MAXSH][MAXPOOL], pool_free[MAXSH][MAXPOOL];
	uint64_t ring_pending[MAXSH];
	int npools;
	struct hist lat[NKIND];
};

#define ADD(f, v) __atomic_add_fetch(&(f), (v), __ATOMIC_RELAXED)
#define GET(f)    __atomic_load_n(&(f), __ATOMIC_RELAXED)
#define SET(f, v) __atomic_store_n(&(f), (v), __ATOMIC_RELAXED)

void rd_metrics_request(struct rd_metrics *m, int kind)
{
	if (kind >= 0 && kind < NKIND)
		ADD(m->requests[kind], 1);
}

void rd_metrics_completion(struct rd_metrics *m, int kind, int status, uint64_t ns)
{
	if (kind < 0 || kind >= NKIND || status < 0 || status >= NSTATUS)
		return;
	ADD(m->completions[kind][status], 1);
	if (!ns)
		return;
	double s = (double)ns / 1e9;
	for (int i = 0; i < NBUCKET; i++)
		if (s <= bounds[i]) {
			ADD(m->lat[kind].b[i], 1);
			break;
		}
	ADD(m->lat[kind].sum_ns, ns);
	ADD(m->lat[kind].count, 1);
}

void rd_metrics_refused(struct rd_metrics *m)
{
	ADD(m->refused, 1);
}
void rd_metrics_backlog(struct rd_metrics *m, int d)
{
	ADD(m->backlog, d);
}
void rd_metrics_trainers(struct rd_metrics *m, int d)
{
	ADD(m->trainers, d);
}

void rd_metrics_pool(struct rd_metrics *m, int shard, long pool, bool up, uint32_t credits)
{
	if (shard < 0 || shard >= MAXSH || pool < 0 || pool >= MAXPOOL)
		return;
	SET(m->pool_up[shard][pool], up ? 1u : 0u);
	SET(m->pool_credits[shard][pool], credits);
	if (pool + 1 > m->npools)
		SET(m->npools, (int)pool + 1);
}

void rd_metrics_pool_capacity(struct rd_metrics *m, int shard, long pool, uint32_t credits, uint32_t free)
{
	if (shard < 0 || shard >= MAXSH || pool < 0 || pool >= MAXPOOL)
		return;
	SET(m->pool_credits[shard][pool], credits);
	SET(m->pool_free[shard][pool], free);
	if (pool + 1 > GET(m->npools))
		SET(m->npools, (int)pool + 1);
}

void rd_metrics_ring(struct rd_metrics *m, int shard, uint64_t pending)
{
	if (shard >= 0 && shard < MAXSH)
		SET(m->ring_pending[shard], pending);
}

void rd_metrics_gauges(struct rd_metrics *m, int shard, uint32_t inflight, uint32_t sessions,
		       uint32_t waiting)
{
	if (shard < 0 || shard >= MAXSH)
		return;
	SET(m->inflight[shard], inflight);
	SET(m->sessions[shard], sessions);
	SET(m->waiting[shard], waiting);
}

struct out {
	char *buf;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *b = realloc(o->buf, o->cap * 2 + (size_t)n);
		if (!b)
			return;
		o->buf = b;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static const char *kind_name(int k)
{
	const char *n = rw_Action_name((uint8_t)k);
	return n ? n : "unknown";
}

char *rd_metrics_render(struct rd_metrics *m, size_t *len)
{
	struct out o = { malloc(16384), 0, 16384 };
	if (!o.buf)
		return NULL;
	put(&o, "# HELP rolloutd_requests_total Requests read from trainer rings, by action.\n"
		"# TYPE rolloutd_requests_total counter\n");
	for (int k = 1; k < 6; k++)
		put(&o, "rolloutd_requests_total{action=\"%s\"} %llu\n", kind_name(k),
		    (unsigned long long)GET(m->requests[k]));
	put(&o, "# HELP rolloutd_completions_total Completions written to trainers, by action and status.\n"
		"# TYPE rolloutd_completions_total counter\n");
	for (int k = 1; k < 6; k++)
		for (int s = 0; s < NSTATUS; s++)
			put(&o, "rolloutd_completions_total{action=\"%s\",status=\"%s\"} %llu\n",
			    kind_name(k), rw_Status_name((uint16_t)s),
			    (unsigned long long)GET(m->completions[k][s]));
	put(&o,
	    "# HELP rolloutd_refused_records_total Records and messages refused (malformed, unknown, late).\n"
	    "# TYPE rolloutd_refused_records_total counter\nrolloutd_refused_records_total %llu\n"
	    "# HELP rolloutd_trainers Trainers attached.\n# TYPE rolloutd_trainers gauge\nrolloutd_trainers "
	    "%lld\n"
	    "# HELP rolloutd_completion_backlog Completions waiting for room in a trainer's ring.\n"
	    "# TYPE rolloutd_completion_backlog gauge\nrolloutd_completion_backlog %lld\n",
	    (unsigned long long)GET(m->refused), (long long)GET(m->trainers), (long long)GET(m->backlog));
	put(&o, "# HELP rolloutd_inflight Requests dispatched to pools and not yet answered, per shard.\n"
		"# TYPE rolloutd_inflight gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		put(&o, "rolloutd_inflight{shard=\"%u\"} %u\n", s, GET(m->inflight[s]));
	put(&o, "# HELP rolloutd_sessions Open sandboxes, per shard.\n# TYPE rolloutd_sessions gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		put(&o, "rolloutd_sessions{shard=\"%u\"} %u\n", s, GET(m->sessions[s]));
	put(&o, "# HELP rolloutd_open_queue Opens waiting for pool capacity, per shard.\n"
		"# TYPE rolloutd_open_queue gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		put(&o, "rolloutd_open_queue{shard=\"%u\"} %u\n", s, GET(m->waiting[s]));
	put(&o, "# HELP rolloutd_pool_up Whether a pool link answers (1) or is down (0).\n"
		"# TYPE rolloutd_pool_up gauge\n");
	int np = GET(m->npools);
	for (uint32_t s = 0; s < m->nshards; s++)
		for (int p = 0; p < np; p++)
			put(&o, "rolloutd_pool_up{shard=\"%u\",pool=\"%d\"} %u\n", s, p,
			    GET(m->pool_up[s][p]));
	put(&o, "# HELP rolloutd_pool_credits Requests a pool link may still take (its max_inflight minus in "
		"flight).\n"
		"# TYPE rolloutd_pool_credits gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		for (int p = 0; p < np; p++)
			put(&o, "rolloutd_pool_credits{shard=\"%u\",pool=\"%d\"} %u\n", s, p,
			    GET(m->pool_credits[s][p]));
	put(&o, "# HELP rolloutd_pool_free_sandboxes Free sandboxes a pool reports, all profiles.\n"
		"# TYPE rolloutd_pool_free_sandboxes gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		for (int p = 0; p < np; p++)
			put(&o, "rolloutd_pool_free_sandboxes{shard=\"%u\",pool=\"%d\"} %u\n", s, p,
			    GET(m->pool_free[s][p]));
	put(&o, "# HELP rolloutd_ring_pending_bytes Bytes waiting in the shard's submission rings.\n"
		"# TYPE rolloutd_ring_pending_bytes gauge\n");
	for (uint32_t s = 0; s < m->nshards; s++)
		put(&o, "rolloutd_ring_pending_bytes{shard=\"%u\"} %llu\n", s,
		    (unsigned long long)GET(m->ring_pending[s]));
	put(&o, "# HELP rolloutd_latency_seconds Submit to completion, by action.\n"
		"# TYPE rolloutd_latency_seconds histogram\n");
	for (int k = 1; k < 6; k++) {
		uint64_t cum = 0;
		for (int i = 0; i < NBUCKET; i++) {
			cum += GET(m->lat[k].b[i]);
			put(&o, "rolloutd_latency_seconds_bucket{action=\"%s\",le=\"%g\"} %llu\n",
			    kind_name(k), bounds[i], (unsigned long long)cum);
		}
		uint64_t count = GET(m->lat[k].count);
		if (count < cum)
			count = cum;
		put(&o,
		    "rolloutd_latency_seconds_bucket{action=\"%s\",le=\"+Inf\"} %llu\n"
		    "rolloutd_latency_seconds_sum{action=\"%s\"} "
		    "%.9f\nrolloutd_latency_seconds_count{action=\"%s\"} %llu\n",
		    kind_name(k), (unsigned long long)count, kind_name(k),
		    (double)GET(m->lat[k].sum_ns) / 1e9, kind_name(k), (unsigned long long)count);
	}
	*len = o.len;
	return o.buf;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct rd_metrics *m = cls;
	struct MHD_Response *r;
	unsigned code = MHD_HTTP_OK;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char t[] = "method not allowed\n";
		r = MHD_create_response_from_buffer(sizeof(t) - 1, (void *)t, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Allow", "GET, HEAD");
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (!strcmp(url, "/metrics")) {
		size_t len;
		char *body = rd_metrics_render(m, &len);
		if (!body)
			return MHD_NO;
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	} else if (!strcmp(url, "/healthz")) {
		static const char t[] = "ok\n";
		r = MHD_create_response_from_buffer(sizeof(t) - 1, (void *)t, MHD_RESPMEM_PERSISTENT);
	} else {
		static const char t[] = "not found\n";
		r = MHD_create_response_from_buffer(sizeof(t) - 1, (void *)t, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	}
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

int rd_metrics_start(struct rd_metrics **out, const char *addr, uint32_t nshards)
{
	struct rd_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->nshards = nshards > MAXSH ? MAXSH : nshards;
	*out = m;
	if (!addr)
		return 0;
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || *end || port < 0 || port > 65535)
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	m->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, answer, m,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
				   64u, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				   (size_t)65536, MHD_OPTION_END);
	return m->http ? 0 : -EADDRINUSE;
}

void rd_metrics_stop(struct rd_metrics *m)
{
	if (!m)
		return;
	if (m->http)
		MHD_stop_daemon(m->http);
	free(m);
}
