/* rollout-pool's Prometheus endpoint: /metrics (text format 0.0.4) and /healthz, served by
 * libmicrohttpd's own thread. The event loop updates relaxed atomics; the HTTP thread only
 * reads them, so a slow scraper never slows the data path. Label sets are bounded: status
 * and action kind come from the schema's enums. */
#include "metrics.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollout_wire.h"

#define NSTATUS 16
#define NKIND   8
#define NBUCKET 14

static const double bucket_s[NBUCKET] = { 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					  0.01,    0.025,  0.05,    0.1,    0.25,  1,      5 };

struct hist {
	uint64_t b[NBUCKET];
	uint64_t count;
	uint64_t sum_ns;
};

struct pool_metrics {
	struct MHD_Daemon *http;
	char identity[128];
	uint64_t completions[NSTATUS];
	uint64_t requests[NKIND];
	uint64_t refused, duplicates, lease_expired, create_failed;
	int64_t sandboxes;
	uint64_t warm, leased, inflight;
	struct hist create, exec;
};

#define ADD(field, v) __atomic_add_fetch(&(field), (v), __ATOMIC_RELAXED)
#define GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

static void observe(struct hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	for (int i = 0; i < NBUCKET; i++)
		if (s <= bucket_s[i]) {
			ADD(h->b[i], 1);
			break;
		}
	ADD(h->count, 1);
	ADD(h->sum_ns, ns);
}

void pool_metrics_completion(struct pool_metrics *m, int status)
{
	if (m && status >= 0 && status < NSTATUS)
		ADD(m->completions[status], 1);
}
void pool_metrics_request(struct pool_metrics *m, int kind)
{
	if (m && kind >= 0 && kind < NKIND)
		ADD(m->requests[kind], 1);
}
void pool_metrics_refused(struct pool_metrics *m)
{
	if (m)
		ADD(m->refused, 1);
}
void pool_metrics_duplicate(struct pool_metrics *m)
{
	if (m)
		ADD(m->duplicates, 1);
}
void pool_metrics_lease_expired(struct pool_metrics *m)
{
	if (m)
		ADD(m->lease_expired, 1);
}
void pool_metrics_create_failed(struct pool_metrics *m)
{
	if (m)
		ADD(m->create_failed, 1);
}
void pool_metrics_sandboxes(struct pool_metrics *m, int delta)
{
	if (m)
		ADD(m->sandboxes, delta);
}
void pool_metrics_create_ns(struct pool_metrics *m, uint64_t ns)
{
	if (m)
		observe(&m->create, ns);
}
void pool_metrics_exec_ns(struct pool_metrics *m, uint64_t ns)
{
	if (m)
		observe(&m->exec, ns);
}
void pool_metrics_gauges(struct pool_metrics *m, uint32_t warm, uint32_t leased, uint32_t inflight)
{
	if (!m)
		return;
	__atomic_store_n(&m->warm, warm, __ATOMIC_RELAXED);
	__atomic_store_n(&m->leased, leased, __ATOMIC_RELAXED);
	__atomic_store_n(&m->inflight, inflight, __ATOMIC_RELAXED);
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
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		if (!b)
			return;
		o->buf = b;
		o->cap = cap;
	}
}

static void put_hist(struct out *o, const char *name, const char *help, struct hist *h)
{
	put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (int i = 0; i < NBUCKET; i++) {
		cum += GET(h->b[i]);
		put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_s[i], (unsigned long long)cum);
	}
	/* +Inf is the count read after the buckets, so it is never below them. */
	uint64_t count = GET(h->count);
	if (count < cum)
		count = cum;
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name, (unsigned long long)count,
	    name, (double)GET(h->sum_ns) / 1e9, name, (unsigned long long)count);
}

char *pool_metrics_render(struct pool_metrics *m, size_t *len)
{
	struct out o = { malloc(8192), 0, 8192 };
	if (!o.buf)
		return NULL;
	o.buf[0] = 0;
	put(&o, "# HELP rollout_pool_requests_total Requests received, by action.\n"
		"# TYPE rollout_pool_requests_total counter\n");
	for (int k = 1; k < NKIND; k++) {
		const char *name = rw_Action_name((uint8_t)k);
		if (name && strcmp(name, "NONE") != 0)
			put(&o, "rollout_pool_requests_total{action=\"%s\"} %llu\n", name,
			    (unsigned long long)GET(m->requests[k]));
	}
	put(&o, "# HELP rollout_pool_completions_total Completions sent, by status.\n"
		"# TYPE rollout_pool_completions_total counter\n");
	for (int s = 0; s < NSTATUS; s++)
		put(&o, "rollout_pool_completions_total{status=\"%s\"} %llu\n", rw_Status_name((uint16_t)s),
		    (unsigned long long)GET(m->completions[s]));
	put(&o,
	    "# HELP rollout_pool_refused_total Malformed or unexpected messages dropped.\n"
	    "# TYPE rollout_pool_refused_total counter\nrollout_pool_refused_total %llu\n"
	    "# HELP rollout_pool_duplicate_dispatches_total Dispatches seen again and answered from the "
	    "cache.\n"
	    "# TYPE rollout_pool_duplicate_dispatches_total counter\nrollout_pool_duplicate_dispatches_total "
	    "%llu\n"
	    "# HELP rollout_pool_leases_expired_total Sandboxes reaped because their coordinator went "
	    "silent.\n"
	    "# TYPE rollout_pool_leases_expired_total counter\nrollout_pool_leases_expired_total %llu\n"
	    "# HELP rollout_pool_create_failures_total Sandbox creations that failed.\n"
	    "# TYPE rollout_pool_create_failures_total counter\nrollout_pool_create_failures_total %llu\n"
	    "# HELP rollout_pool_sandboxes Sandboxes that exist (creating, warm or leased).\n"
	    "# TYPE rollout_pool_sandboxes gauge\nrollout_pool_sandboxes %lld\n"
	    "# HELP rollout_pool_warm_sandboxes Sandboxes ready to claim.\n"
	    "# TYPE rollout_pool_warm_sandboxes gauge\nrollout_pool_warm_sandboxes %llu\n"
	    "# HELP rollout_pool_leased_sandboxes Sandboxes owned by a coordinator.\n"
	    "# TYPE rollout_pool_leased_sandboxes gauge\nrollout_pool_leased_sandboxes %llu\n"
	    "# HELP rollout_pool_inflight_actions Actions running in sandboxes.\n"
	    "# TYPE rollout_pool_inflight_actions gauge\nrollout_pool_inflight_actions %llu\n",
	    (unsigned long long)GET(m->refused), (unsigned long long)GET(m->duplicates),
	    (unsigned long long)GET(m->lease_expired), (unsigned long long)GET(m->create_failed),
	    (long long)GET(m->sandboxes), (unsigned long long)GET(m->warm),
	    (unsigned long long)GET(m->leased), (unsigned long long)GET(m->inflight));
	put_hist(&o, "rollout_pool_sandbox_create_seconds", "Time to create a sandbox with full isolation.",
		 &m->create);
	put_hist(&o, "rollout_pool_exec_seconds", "Exec actions, dispatch to answer.", &m->exec);
	*len = o.len;
	return o.buf;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct pool_metrics *m = cls;
	struct MHD_Response *r;
	unsigned code = MHD_HTTP_OK;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static const char msg[] = "method not allowed\n";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	} else if (strcmp(url, "/metrics") == 0) {
		size_t len = 0;
		char *body = pool_metrics_render(m, &len);
		if (!body)
			return MHD_NO;
		r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	} else if (strcmp(url, "/healthz") == 0) {
		static const char ok[] = "ok\n";
		r = MHD_create_response_from_buffer(sizeof(ok) - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
	} else {
		static const char nf[] = "not found\n";
		r = MHD_create_response_from_buffer(sizeof(nf) - 1, (void *)nf, MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_NOT_FOUND;
	}
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

int pool_metrics_start(struct pool_metrics **out, const char *addr, const char *identity)
{
	struct pool_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	snprintf(m->identity, sizeof(m->identity), "%s", identity ? identity : "");
	*out = m;
	if (!addr)
		return 0;
	const char *colon = strrchr(addr, ':');
	char *end;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || *end || port < 0 || port > 65535)
		return -EINVAL;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char host[64];
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	/* Bounded answers to slow or odd clients: small connection limit and timeout. */
	m->http = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, answer, m,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
				   64u, MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				   (size_t)65536, MHD_OPTION_END);
	return m->http ? 0 : -EADDRINUSE;
}

void pool_metrics_stop(struct pool_metrics *m)
{
	if (!m)
		return;
	if (m->http)
		MHD_stop_daemon(m->http);
	free(m);
}
