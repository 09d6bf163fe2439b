/* E2B control plane (REST + JSON, X-API-Key): create, get, list, kill, set timeout,
 * refresh and connect; pause/resume, snapshots and fork answer E2B's error shape with
 * 501, since the pool has no snapshots. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"

#define GW_KEEPALIVE_MS 30000

/* The fields the SDK reads from create and connect (openapi `Sandbox`). */
static json_t *sandbox_json(const struct gw_sandbox *sb)
{
	/* No domain: the SDK then sends envd calls to E2B_SANDBOX_URL (this gateway). */
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "sandboxID", sb->id, "templateID", sb->template_id,
			 "clientID", "rollout-gateway", "envdVersion", GW_ENVD_VERSION, "envdAccessToken",
			 sb->token, "alias", sb->template_id);
}

/* openapi `ListedSandbox` / `SandboxDetail`. */
static json_t *detail_json(const struct gw_sandbox *sb, bool with_token)
{
	char st[40], en[40];
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:O,s:s,s:[]}", "sandboxID", sb->id,
			      "templateID", sb->template_id, "alias", sb->template_id, "clientID",
			      "rollout-gateway", "startedAt", gw_iso8601(sb->started_ms, st, sizeof(st)),
			      "endAt", gw_iso8601(sb->end_ms, en, sizeof(en)), "cpuCount", 1, "memoryMB", 0,
			      "diskSizeMB", 0, "metadata", sb->metadata, "state", "running", "volumeMounts");
	if (o) {
		json_object_set_new(o, "envdVersion", json_string(GW_ENVD_VERSION));
		if (with_token)
			json_object_set_new(o, "envdAccessToken", json_string(sb->token));
	}
	return o;
}

/* A lifetime asked in seconds, bounded by the configuration. */
static int timeout_arg(struct gw_req *rq, json_t *body, int64_t *ms)
{
	json_t *t = json_object_get(body, "timeout");
	if (!t || json_is_null(t)) {
		*ms = (int64_t)rq->g->cfg.default_timeout_s * 1000;
		return 0;
	}
	if (!json_is_integer(t) || json_integer_value(t) < 0) {
		gw_reply_error(rq, 400, "timeout must be a non-negative integer (seconds)");
		return -EINVAL;
	}
	json_int_t s = json_integer_value(t);
	if (s > (json_int_t)rq->g->cfg.max_timeout_s) {
		gw_reply_error(rq, 400, "timeout %lld s is over the maximum of %u s", (long long)s,
			       rq->g->cfg.max_timeout_s);
		return -EINVAL;
	}
	*ms = (int64_t)s * 1000;
	return 0;
}

static bool strings_object(const json_t *o)
{
	const char *k;
	json_t *v;
	if (!json_is_object(o))
		return false;
	json_object_foreach((json_t *)o, k, v) if (!json_is_string(v)) return false;
	return true;
}

static void opened(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_req *rq = op->ctx;
	struct gw *g = rq->g;
	struct gw_sandbox *sb = rq->sb;
	rq->sb = NULL;
	g->open_creates--;
	if (c->status != 0) {
		gw_metrics_sandbox(g->m, GW_SB_CREATE_FAILED);
		RLOG(RLOG_WARN, "create failed", "status=%s infra_failed=%d", rollout_status_name(c->status),
		     c->infra_failed);
		unsigned http = c->status == 11 /* UNKNOWN_PROFILE */                 ? 400
				: c->status == 1 /* TIMEOUT */                        ? 504
				: c->status == 3 || c->status == 15 || c->status == 9 ? 503
										      : 500;
		gw_reply_error(rq, http, "cannot create the sandbox: rolloutd %s%s%s",
			       rollout_status_name(c->status), c->message ? ": " : "",
			       c->message ? c->message : "");
		gw_sandbox_unref(sb);
		gw_req_op_done(rq);
		return;
	}
	sb->rsb = c->sandbox;
	sb->started_ms = gw_wall_ms();
	sb->end_ms = sb->started_ms + (sb->end_ms); /* end_ms held the lifetime until now */
	gw_sandbox_add(&g->reg, sb);
	gw_metrics_sandbox(g->m, GW_SB_CREATED);
	if (rq->conn) {
		gw_reply_json(rq, 201, sandbox_json(sb));
	} else { /* the client is gone: nobody will ever know this sandbox */
		gw_sandbox_kill(g, sb, "client gone");
	}
	gw_req_op_done(rq);
}

static void create(struct gw_req *rq)
{
	struct gw *g = rq->g;
	json_t *body = gw_req_json(rq);
	if (!body)
		return;
	const char *tmpl = json_string_value(json_object_get(body, "templateID"));
	json_t *md = json_object_get(body, "metadata"), *env = json_object_get(body, "envVars");
	json_t *ap = json_object_get(body, "autoPause");
	int64_t life;
	const char *profile;
	if (!tmpl) {
		gw_reply_error(rq, 400, "templateID is required");
		goto out;
	}
	if (!(profile = gw_config_profile(&g->cfg, tmpl))) {
		gw_reply_error(rq, 404, "template '%s' not found", tmpl);
		goto out;
	}
	if (json_is_true(ap)) {
		gw_reply_error(rq, 501, "autoPause is not supported: rollout-pool has no pause or snapshots");
		goto out;
	}
	if ((md && !json_is_null(md) && !strings_object(md)) ||
	    (env && !json_is_null(env) && !strings_object(env))) {
		gw_reply_error(rq, 400, "metadata and envVars must be objects of strings");
		goto out;
	}
	if (timeout_arg(rq, body, &life))
		goto out;
	if (g->reg.count + g->open_creates >= g->cfg.max_sandboxes) {
		gw_reply_error(rq, 429, "the gateway holds max_sandboxes (%u) sandboxes",
			       g->cfg.max_sandboxes);
		goto out;
	}
	struct gw_sandbox *sb = gw_sandbox_new(tmpl, profile);
	struct gw_op *op = sb ? gw_op_new(GW_OP_OPEN, opened, rq) : NULL;
	if (!op || !(op->profile = strdup(profile))) {
		gw_op_free(op);
		if (sb)
			gw_sandbox_unref(sb);
		gw_reply_error(rq, 500, "out of memory");
		goto out;
	}
	if (json_is_object(md))
		json_object_update(sb->metadata, md);
	if (json_is_object(env))
		json_object_update(sb->envs, env);
	sb->end_ms = life;
	sb->gw = g;
	op->deadline_ns = gw_now_ns() + (uint64_t)g->cfg.open_timeout_ms * 1000000ull;
	rq->sb = sb;
	rq->pending++;
	g->open_creates++;
	gw_backend_submit(&g->be, op);
out:
	json_decref(body);
}

static void list(struct gw_req *rq)
{
	struct gw *g = rq->g;
	json_t *filter = NULL;
	const char *md = gw_req_query(rq, "metadata"), *state = gw_req_query(rq, "state");
	const char *lim = gw_req_query(rq, "limit"), *tok = gw_req_query(rq, "nextToken");
	if (md && !(filter = gw_metadata_filter_parse(md))) {
		gw_reply_error(rq, 400, "malformed metadata filter");
		return;
	}
	/* Every sandbox here is running; a filter naming only other states matches none. */
	bool running = !state || strstr(state, "running");
	unsigned long limit = lim ? strtoul(lim, NULL, 10) : 1000;
	if (limit == 0 || limit > 1000)
		limit = 1000;
	unsigned long long after = tok ? strtoull(tok, NULL, 10) : 0;
	json_t *arr = json_array();
	unsigned long n = 0;
	const struct gw_sandbox *last = NULL;
	bool more = false;
	for (struct gw_sandbox *sb = g->reg.head; running && sb; sb = sb->next) {
		if (sb->seq <= after || (filter && !gw_sandbox_metadata_match(sb, filter)))
			continue;
		const char *t = gw_req_query(rq, "template");
		if (t && *t && strcmp(t, sb->template_id))
			continue;
		if (n == limit) {
			more = true;
			break;
		}
		json_array_append_new(arr, detail_json(sb, false));
		last = sb;
		n++;
	}
	json_decref(filter);
	char *s = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	struct MHD_Response *r =
	    s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(s);
		gw_reply_error(rq, 500, "out of memory");
		return;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (more && last) {
		char t[32];
		snprintf(t, sizeof(t), "%llu", (unsigned long long)last->seq);
		MHD_add_response_header(r, "X-Next-Token", t);
	}
	MHD_queue_response(rq->conn, 200, r);
	MHD_destroy_response(r);
	rq->queued = true;
	gw_metrics_request(g->m, rq->route.kind, 200, gw_now_ns() - rq->t0_ns);
}

static void closed(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_sandbox *sb = op->ctx;
	if (c->status != 0 && c->status != 5 /* NOT_FOUND: already gone at the pool */)
		RLOG(RLOG_WARN, "close failed", "sandbox=%s status=%s", sb->id,
		     rollout_status_name(c->status));
	gw_sandbox_unref(sb);
}

void gw_sandbox_kill(struct gw *g, struct gw_sandbox *sb, const char *why)
{
	RLOG(RLOG_DEBUG, "sandbox killed", "sandbox=%s why=\"%s\"", sb->id, why);
	struct gw_op *op = gw_op_new(GW_OP_CLOSE, closed, sb);
	gw_sandbox_ref(sb);
	gw_sandbox_remove(&g->reg, sb);
	gw_procs_abort(sb);
	if (!op) { /* out of memory: rolloutd closes it when the gateway detaches */
		gw_sandbox_unref(sb);
		return;
	}
	op->sandbox = sb->rsb;
	gw_backend_submit(&g->be, op);
}

int gw_expire(struct gw *g)
{
	int64_t now = gw_wall_ms(), next = 1000;
	for (struct gw_sandbox *sb = g->reg.head, *nx; sb; sb = nx) {
		nx = sb->next;
		gw_procs_keepalive(sb, now, GW_KEEPALIVE_MS);
		if (sb->end_ms <= now) {
			gw_metrics_sandbox(g->m, GW_SB_EXPIRED);
			gw_sandbox_kill(g, sb, "timeout");
		} else if (sb->end_ms - now < next) {
			next = sb->end_ms - now;
		}
	}
	return (int)next;
}

static void set_timeout(struct gw_req *rq, struct gw_sandbox *sb, bool only_extend)
{
	json_t *body = gw_req_json(rq);
	int64_t ms;
	if (!body)
		return;
	if (!timeout_arg(rq, body, &ms)) {
		int64_t end = gw_wall_ms() + ms;
		/* setTimeout may shorten (as E2B); connect and refresh only extend. */
		if (!only_extend || end > sb->end_ms)
			sb->end_ms = end;
		if (rq->route.kind == GW_R_CONNECT)
			gw_reply_json(rq, 200, sandbox_json(sb));
		else
			gw_reply(rq, 204, NULL, "", 0);
	}
	json_decref(body);
}

void gw_control(struct gw_req *rq)
{
	struct gw *g = rq->g;
	const struct gw_route *r = &rq->route;
	switch (r->kind) {
	case GW_R_CREATE:
		create(rq);
		return;
	case GW_R_LIST:
		list(rq);
		return;
	case GW_R_UNSUPPORTED:
		gw_reply_error(rq, 501,
			       "%s is not supported by rollout-gateway: rollout-pool has no pause, "
			       "snapshots or fork yet",
			       r->feature);
		return;
	default:
		break;
	}
	struct gw_sandbox *sb = gw_sandbox_find(&g->reg, r->id);
	if (!sb) {
		gw_reply_error(rq, 404, "sandbox \"%s\" not found", r->id);
		return;
	}
	switch (r->kind) {
	case GW_R_GET:
		gw_reply_json(rq, 200, detail_json(sb, true));
		return;
	case GW_R_KILL:
		gw_metrics_sandbox(g->m, GW_SB_KILLED);
		gw_sandbox_kill(g, sb, "killed by the API");
		gw_reply(rq, 204, NULL, "", 0);
		return;
	case GW_R_TIMEOUT:
		set_timeout(rq, sb, false);
		return;
	case GW_R_REFRESH:
	case GW_R_CONNECT:
		set_timeout(rq, sb, true);
		return;
	default:
		gw_reply_error(rq, 404, "no such route");
	}
}
