/* libmicrohttpd glue of the gateway: one request context per HTTP request, bounded body
 * collection, authentication and routing, replies that may come later (suspended
 * connections) and Connect server streams. */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void queue_now(struct gw_req *rq)
{
	if (!rq->resp || rq->queued)
		return;
	MHD_queue_response(rq->conn, rq->status, rq->resp);
	MHD_destroy_response(rq->resp);
	rq->resp = NULL;
	rq->queued = true;
	gw_metrics_request(rq->g->m, rq->route.kind, rq->status, gw_now_ns() - rq->t0_ns);
	if (rq->suspended) {
		rq->suspended = false;
		MHD_resume_connection(rq->conn);
	}
}

static void set_resp(struct gw_req *rq, unsigned status, struct MHD_Response *r)
{
	if (!r || rq->resp || rq->queued || !rq->conn) {
		if (r)
			MHD_destroy_response(r);
		return;
	}
	rq->resp = r;
	rq->status = status;
	/* A request still in the access handler is queued on return from it; a suspended
	 * one can be queued at any moment (libmicrohttpd sends it once resumed). */
	if (rq->suspended)
		queue_now(rq);
}

void gw_reply(struct gw_req *rq, unsigned status, const char *ctype, const void *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r && ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	set_resp(rq, status, r);
}

void gw_reply_json(struct gw_req *rq, unsigned status, json_t *obj)
{
	char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (!s) {
		static const char oom[] = "{\"code\":500,\"message\":\"out of memory\"}";
		gw_reply(rq, 500, "application/json", oom, sizeof(oom) - 1);
		return;
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(s);
		return;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	set_resp(rq, status, r);
}

void gw_reply_error(struct gw_req *rq, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_object();
	json_object_set_new(o, "code", json_integer(status));
	json_object_set_new(o, "message", gw_json_text(msg, strlen(msg)));
	gw_reply_json(rq, status, o);
}

void gw_reply_connect_error(struct gw_req *rq, enum connect_code code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rq->route.streaming) {
		struct gw_stream *s = rq->stream ? rq->stream : gw_stream_open(rq);
		if (s)
			gw_stream_end(s, code, msg);
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "code", json_string(connect_code_name(code)));
	json_object_set_new(o, "message", gw_json_text(msg, strlen(msg)));
	gw_reply_json(rq, connect_code_http(code), o);
}

/* ---------------------------------------------------------------- streams */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct gw_stream *s = cls;
	(void)pos;
	if (s->off < s->len) {
		size_t n = s->len - s->off < max ? s->len - s->off : max;
		memcpy(buf, s->buf + s->off, n);
		s->off += n;
		if (s->off == s->len)
			s->off = s->len = 0;
		return (ssize_t)n;
	}
	if (s->end)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing to send yet: park the connection until the producer appends. */
	s->suspended = true;
	MHD_suspend_connection(s->conn);
	return 0;
}

static void stream_free(void *cls)
{
	struct gw_stream *s = cls;
	gw_metrics_streams(s->g->m, -1);
	gw_proc_detach_stream(s);
	free(s->buf);
	free(s);
}

struct gw_stream *gw_stream_open(struct gw_req *rq)
{
	struct gw_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->g = rq->g;
	s->conn = rq->conn;
	struct MHD_Response *r =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
	if (!r) {
		free(s);
		return NULL;
	}
	gw_metrics_streams(rq->g->m, 1);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/connect+json");
	rq->stream = s;
	set_resp(rq, 200, r);
	return s;
}

static void stream_append(struct gw_stream *s, uint8_t flags, const char *msg, size_t n)
{
	if (s->end)
		return;
	size_t need = s->len + CONNECT_HDR + n;
	if (need > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < need)
			cap *= 2;
		uint8_t *nb = realloc(s->buf, cap);
		if (!nb) {
			s->end = true; /* out of memory: end the stream short, the client sees an error */
			goto wake;
		}
		s->buf = nb;
		s->cap = cap;
	}
	s->last_ms = gw_wall_ms();
	connect_envelope_hdr(s->buf + s->len, flags, (uint32_t)n);
	memcpy(s->buf + s->len + CONNECT_HDR, msg, n);
	s->len += CONNECT_HDR + n;
wake:
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	}
}

void gw_stream_msg(struct gw_stream *s, json_t *obj)
{
	char *j = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
	if (j)
		stream_append(s, 0, j, strlen(j));
	free(j);
}

void gw_stream_end(struct gw_stream *s, enum connect_code code, const char *message)
{
	char *j = connect_end_json(code, message);
	stream_append(s, CONNECT_FLAG_END, j ? j : "{}", j ? strlen(j) : 2);
	free(j);
	s->end = true;
	gw_proc_detach_stream(s);
}

/* ---------------------------------------------------------------- requests */

const char *gw_req_header(struct gw_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *gw_req_query(struct gw_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *gw_req_json(struct gw_req *rq)
{
	json_error_t e;
	json_t *j =
	    json_loadb(rq->body ? rq->body : "{}", rq->body ? rq->len : 2, JSON_REJECT_DUPLICATES, &e);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		if (rq->route.envd)
			gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "invalid JSON body: %s", e.text);
		else
			gw_reply_error(rq, 400, "invalid JSON body: %s", j ? "expected an object" : e.text);
		return NULL;
	}
	return j;
}

static int body_append(struct gw_req *rq, const char *data, size_t n)
{
	if (rq->too_big || rq->len + n > rq->g->cfg.max_body_bytes) {
		rq->too_big = true;
		return 0;
	}
	if (rq->len + n + 1 > rq->cap) {
		size_t cap = rq->cap ? rq->cap * 2 : 1024;
		while (cap < rq->len + n + 1)
			cap *= 2;
		char *nb = realloc(rq->body, cap);
		if (!nb)
			return -ENOMEM;
		rq->body = nb;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len += n;
	rq->body[rq->len] = 0;
	return 0;
}

static enum MHD_Result upload_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
				   const char *content_type, const char *transfer_encoding, const char *data,
				   uint64_t off, size_t size)
{
	struct gw_req *rq = cls;
	(void)kind, (void)content_type, (void)transfer_encoding;
	if (!filename || !key || strcmp(key, "file"))
		return MHD_YES; /* other form fields carry nothing E2B defines */
	struct gw_upload *u = rq->nup ? &rq->up[rq->nup - 1] : NULL;
	if (off == 0 || !u || strcmp(u->path, filename)) {
		if (rq->nup >= GW_MAX_UPLOAD_FILES) {
			rq->too_big = true;
			return MHD_YES;
		}
		if (!rq->up && !(rq->up = calloc(GW_MAX_UPLOAD_FILES, sizeof(*rq->up))))
			return MHD_NO;
		u = &rq->up[rq->nup++];
		if (!(u->path = strdup(filename)))
			return MHD_NO;
	}
	size_t total = 0;
	for (unsigned i = 0; i < rq->nup; i++)
		total += rq->up[i].len;
	if (total + size > rq->g->cfg.max_body_bytes) {
		rq->too_big = true;
		return MHD_YES;
	}
	if (size == 0) /* an empty file, or the part's headers alone */
		return MHD_YES;
	if (u->len + size > u->cap) {
		size_t cap = u->cap ? u->cap : 4096;
		while (cap < u->len + size)
			cap *= 2;
		uint8_t *nb = realloc(u->data, cap);
		if (!nb)
			return MHD_NO;
		u->data = nb;
		u->cap = cap;
	}
	memcpy(u->data + u->len, data, size);
	u->len += size;
	return MHD_YES;
}

static void req_free(struct gw_req *rq)
{
	if (rq->pp)
		MHD_destroy_post_processor(rq->pp);
	for (unsigned i = 0; i < rq->nup; i++) {
		free(rq->up[i].path);
		free(rq->up[i].data);
	}
	free(rq->up);
	json_decref(rq->result);
	if (rq->resp)
		MHD_destroy_response(rq->resp);
	free(rq->body);
	free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)conn, (void)toe;
	struct gw_req *rq = *con_cls;
	if (!rq)
		return;
	*con_cls = NULL;
	if (rq->pending) {
		/* Ops of this request are still in flight (only at shutdown, since a waiting
		 * connection is suspended): the last one's callback frees it. */
		rq->conn = NULL;
		return;
	}
	req_free(rq);
}

void gw_req_op_done(struct gw_req *rq)
{
	if (rq->pending)
		rq->pending--;
	if (!rq->conn && !rq->pending)
		req_free(rq);
}

static bool authorized(struct gw_req *rq)
{
	const struct gw_route *r = &rq->route;
	if (r->api_key) {
		const char *k = gw_req_header(rq, "X-API-Key");
		if (!gw_config_key_ok(&rq->g->cfg, k)) {
			gw_reply_error(rq, 401, "Invalid API key");
			return false;
		}
	}
	return true;
}

static void dispatch(struct gw_req *rq)
{
	struct gw *g = rq->g;
	const struct gw_route *r = &rq->route;
	if (rq->malformed) {
		gw_reply_error(rq, 400, "malformed multipart body");
		return;
	}
	if (rq->too_big) {
		if (r->envd && r->kind != GW_R_FILES_POST && r->kind != GW_R_FILES_GET)
			gw_reply_connect_error(rq, CONNECT_RESOURCE_EXHAUSTED, "request body over %u bytes",
					       g->cfg.max_body_bytes);
		else
			gw_reply_error(rq, 413, "request body over the limit of %u bytes (max_body_bytes)",
				       g->cfg.max_body_bytes);
		return;
	}
	switch (r->kind) {
	case GW_R_NOT_FOUND:
		gw_reply_error(rq, 404, "no such route");
		return;
	case GW_R_BAD_METHOD:
		gw_reply_error(rq, 405, "method not allowed on this route");
		return;
	case GW_R_METRICS: {
		size_t n;
		char *txt = gw_metrics_render(g, &n);
		if (!txt) {
			gw_reply_error(rq, 500, "out of memory");
			return;
		}
		gw_reply(rq, 200, "text/plain; version=0.0.4; charset=utf-8", txt, n);
		free(txt);
		return;
	}
	case GW_R_HEALTHZ:
		gw_reply(rq, 200, "text/plain", "ok\n", 3);
		return;
	default:
		break;
	}
	if (!authorized(rq))
		return;
	if (!r->envd) {
		gw_control(rq);
		return;
	}
	const char *id = gw_req_header(rq, "E2b-Sandbox-Id");
	if (!id) {
		if (r->kind == GW_R_HEALTH) { /* the gateway's own health */
			gw_reply(rq, 204, NULL, "", 0);
			return;
		}
		gw_reply_error(rq, 400, "envd routes need the E2b-Sandbox-Id header (set E2B_SANDBOX_URL)");
		return;
	}
	struct gw_sandbox *sb = gw_id_valid(id) ? gw_sandbox_find(&g->reg, id) : NULL;
	if (!sb) {
		/* What E2B's edge answers for a sandbox that is gone: the SDK turns it into
		 * its not-running errors (isRunning() false, SandboxNotFoundError on Start). */
		if (r->kind == GW_R_HEALTH || r->kind == GW_R_FILES_GET || r->kind == GW_R_FILES_POST)
			gw_reply_error(rq, 502, "sandbox not found");
		else
			gw_reply_connect_error(rq, CONNECT_UNAVAILABLE, "sandbox not found");
		return;
	}
	const char *tok = gw_req_header(rq, "X-Access-Token");
	if (!tok || strcmp(tok, sb->token)) {
		if (r->kind == GW_R_FILES_GET || r->kind == GW_R_FILES_POST || r->kind == GW_R_HEALTH)
			gw_reply_error(rq, 401, "invalid access token for this sandbox");
		else
			gw_reply_connect_error(rq, CONNECT_UNAUTHENTICATED,
					       "invalid access token for this sandbox");
		return;
	}
	gw_envd(rq, sb);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_size,
				  void **con_cls)
{
	struct gw *g = cls;
	struct gw_req *rq = *con_cls;
	(void)version;
	if (!rq) {
		if (!(rq = calloc(1, sizeof(*rq))))
			return MHD_NO;
		rq->g = g;
		rq->conn = conn;
		rq->t0_ns = gw_now_ns();
		gw_route(method, url, &rq->route);
		*con_cls = rq;
		const char *cl =
		    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > g->cfg.max_body_bytes + 65536ull)
			rq->too_big = true; /* answered without reading the body, then closed */
		else if (rq->route.kind == GW_R_FILES_POST)
			rq->pp = MHD_create_post_processor(conn, 65536, upload_part, rq);
		if (!rq->too_big)
			return MHD_YES;
	}
	if (*upload_size) {
		if (rq->too_big) { /* over the limit: read and drop the rest, answer at the end */
			*upload_size = 0;
			return MHD_YES;
		}
		int rc = 0;
		if (rq->pp) {
			if (MHD_post_process(rq->pp, upload_data, *upload_size) != MHD_YES)
				rc = -EINVAL;
		} else {
			rc = body_append(rq, upload_data, *upload_size);
		}
		*upload_size = 0;
		if (rc == 0)
			return MHD_YES;
		if (rc == -ENOMEM)
			return MHD_NO;
		rq->malformed = rq->too_big = true; /* drop the rest, answer 400 at the end */
		return MHD_YES;
	}
	*upload_size = 0;
	if (rq->queued)
		return MHD_YES;
	if (!rq->dispatched) {
		rq->dispatched = true;
		dispatch(rq);
	}
	if (rq->resp)
		queue_now(rq);
	if (rq->queued)
		return MHD_YES;
	/* Waiting on rolloutd: park the connection until the op completes. */
	rq->suspended = true;
	MHD_suspend_connection(conn);
	return MHD_YES;
}

static int parse_listen(const char *listen, struct sockaddr_in *sa)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	size_t hl = (size_t)(colon - listen);
	if (!colon || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, hl);
	host[hl] = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	if (!strcmp(host, "*") || !strcmp(host, "0.0.0.0"))
		sa->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (!strcmp(host, "localhost"))
		sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

int gw_http_start(struct gw *g)
{
	struct sockaddr_in sa;
	if (parse_listen(g->cfg.listen, &sa))
		return -EINVAL;
	g->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL,
				  on_request, g, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, g, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)g->cfg.client_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
				  (unsigned)g->cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				  (size_t)65536, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	return g->mhd ? 0 : -EADDRNOTAVAIL;
}

int gw_http_fd(struct gw *g)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(g->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	return i ? i->epoll_fd : -1;
}
