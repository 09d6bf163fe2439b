/* envd's filesystem: filesystem.Filesystem (Stat, ListDir, MakeDir, Remove, Move) and
 * REST GET/POST /files, each one Exec of a small POSIX shell script in the sandbox with
 * paths passed as arguments (never spliced into the script), plus GET /health and the
 * dispatch of every envd request. Entries are listed by find -printf with NUL-separated
 * fields, so any byte may appear in a name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* name, type, size, mode, permissions, owner, group, mtime, link target, path */
#define FIND_FMT    "%f\\0%y\\0%s\\0%m\\0%M\\0%u\\0%g\\0%T@\\0%l\\0%p\\0"
#define FIND_FIELDS 10

/* Exit codes the scripts use for answers (1 is any other failure, with stderr). */
#define X_NOENT  3
#define X_TYPE   4
#define X_EXISTS 5

static const char S_STAT[] =
    "[ -e \"$1\" ] || [ -L \"$1\" ] || exit 3; exec find \"$1\" -maxdepth 0 -printf \"$2\"";
static const char S_LIST[] = "[ -e \"$1\" ] || exit 3; [ -d \"$1\" ] || exit 4; "
			     "exec find \"$1\" -mindepth 1 -maxdepth \"$3\" -printf \"$2\"";
static const char S_MKDIR[] = "[ -e \"$1\" ] && exit 5; mkdir -p -- \"$1\" || exit 1; "
			      "exec find \"$1\" -maxdepth 0 -printf \"$2\"";
static const char S_REMOVE[] = "[ -e \"$1\" ] || [ -L \"$1\" ] || exit 3; exec rm -rf -- \"$1\"";
static const char S_MOVE[] = "[ -e \"$1\" ] || [ -L \"$1\" ] || exit 3; "
			     "mkdir -p -- \"$(dirname -- \"$3\")\" && mv -f -- \"$1\" \"$3\" || exit 1; "
			     "exec find \"$3\" -maxdepth 0 -printf \"$2\"";
static const char S_READ[] = "[ -e \"$1\" ] || exit 3; [ -d \"$1\" ] && exit 4; exec cat -- \"$1\"";
static const char S_WRITE[] =
    "[ -d \"$1\" ] && exit 4; mkdir -p -- \"$(dirname -- \"$1\")\" && exec cat > \"$1\"";

/* Relative paths are taken from the work directory, as envd takes them from the home. */
char *gw_abs_path(struct gw *g, const char *p)
{
	char *o;
	if (p[0] == '/')
		return strdup(p);
	if (p[0] == '~' && (p[1] == '/' || !p[1]))
		p += p[1] ? 2 : 1;
	return asprintf(&o, "%s/%s", g->cfg.workdir, p) < 0 ? NULL : o;
}

/* Starts one script for rq; done gets the completion. rq stays pending until it runs. */
static int script(struct gw_req *rq, struct gw_sandbox *sb, const char *s, const char *a1, const char *a2,
		  const char *a3, const uint8_t *in, size_t in_len, gw_op_done done)
{
	const char *argv[] = { "/bin/sh", "-c", s, "sh", a1, a2, a3, NULL };
	if (!a2)
		argv[5] = NULL;
	else if (!a3)
		argv[6] = NULL;
	struct gw_op *op = gw_op_new(GW_OP_EXEC, done, rq);
	if (!op || gw_op_set_argv(op, argv) || (in_len && !(op->in = malloc(in_len)))) {
		gw_op_free(op);
		return -ENOMEM;
	}
	if (in_len)
		memcpy(op->in, in, in_len);
	op->in_len = in_len;
	op->output_cap = rq->g->cfg.max_output_bytes;
	op->sandbox = sb->rsb;
	rq->pending++;
	gw_backend_submit(&rq->g->be, op);
	return 0;
}

/* Maps a failed script to (code, message); false when the script succeeded. */
static bool failed(const struct rollout_completion *c, enum connect_code *code, char *msg, size_t cap)
{
	if (c->status != 0) {
		*code = c->infra_failed  ? CONNECT_ABORTED
			: c->status == 1 ? CONNECT_DEADLINE_EXCEEDED
					 : CONNECT_INTERNAL;
		snprintf(msg, cap, "rolloutd %s%s%s", rollout_status_name(c->status), c->message ? ": " : "",
			 c->message ? c->message : "");
		return true;
	}
	if (c->exit_code == 0 && !c->signal)
		return false;
	switch (c->exit_code) {
	case X_NOENT:
		*code = CONNECT_NOT_FOUND;
		snprintf(msg, cap, "path does not exist");
		break;
	case X_TYPE:
		*code = CONNECT_INVALID_ARGUMENT;
		snprintf(msg, cap, "path is a directory / not a directory");
		break;
	case X_EXISTS:
		*code = CONNECT_ALREADY_EXISTS;
		snprintf(msg, cap, "path already exists");
		break;
	default: {
		int n = (int)(c->stderr_len < 300 ? c->stderr_len : 300);
		if (!c->stderr_len) {
			*code = CONNECT_INTERNAL;
			snprintf(msg, cap, "exit status %d", c->exit_code);
			break;
		}
		bool perm = memmem(c->stderr_data, c->stderr_len, "ermission denied", 16) ||
			    memmem(c->stderr_data, c->stderr_len, "ead-only file system", 20);
		bool space = memmem(c->stderr_data, c->stderr_len, "space left", 10) ||
			     memmem(c->stderr_data, c->stderr_len, "too large", 9);
		*code = perm    ? CONNECT_PERMISSION_DENIED
			: space ? CONNECT_RESOURCE_EXHAUSTED
				: CONNECT_INTERNAL;
		snprintf(msg, cap, "%.*s", n, (const char *)c->stderr_data);
	}
	}
	return true;
}

/* EntryInfo messages from find output: fields f[0..9], NUL-terminated. */
static json_t *entry(char **f)
{
	static const char *const types[] = { "FILE_TYPE_UNSPECIFIED", "FILE_TYPE_FILE", "FILE_TYPE_DIRECTORY",
					     "FILE_TYPE_SYMLINK" };
	int t = f[1][0] == 'f' ? 1 : f[1][0] == 'd' ? 2 : f[1][0] == 'l' ? 3 : 0;
	double mt = strtod(f[7], NULL);
	long long sec = (long long)mt;
	long nanos = (long)((mt - (double)sec) * 1e9);
	char ts[64];
	char *dot;
	gw_iso8601(sec * 1000, ts, sizeof(ts));
	if ((dot = strchr(ts, '.')))
		snprintf(dot, sizeof(ts) - (size_t)(dot - ts), ".%09ldZ", nanos < 0 ? 0 : nanos);
	json_t *o = json_object();
	json_object_set_new(o, "name", gw_json_text(f[0], strlen(f[0])));
	json_object_set_new(o, "type", json_string(types[t]));
	json_object_set_new(o, "path", gw_json_text(f[9], strlen(f[9])));
	json_object_set_new(o, "size", json_string(f[2]));
	json_object_set_new(o, "mode", json_integer(strtol(f[3], NULL, 8)));
	json_object_set_new(o, "permissions", json_string(f[4]));
	json_object_set_new(o, "owner", gw_json_text(f[5], strlen(f[5])));
	json_object_set_new(o, "group", gw_json_text(f[6], strlen(f[6])));
	json_object_set_new(o, "modifiedTime", json_string(ts));
	if (t == 3)
		json_object_set_new(o, "symlinkTarget", gw_json_text(f[8], strlen(f[8])));
	return o;
}

/* Splits find output into EntryInfo objects. */
static json_t *entries(const uint8_t *d, size_t n)
{
	json_t *arr = json_array();
	char *f[FIND_FIELDS];
	size_t k = 0, start = 0;
	char *copy = malloc(n + 1);
	if (!copy)
		return arr;
	if (n)
		memcpy(copy, d, n);
	copy[n] = 0;
	for (size_t i = 0; i < n; i++)
		if (!copy[i]) {
			f[k++] = copy + start;
			start = i + 1;
			if (k == FIND_FIELDS) {
				json_array_append_new(arr, entry(f));
				k = 0;
			}
		}
	free(copy);
	return arr;
}

static void fs_done(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_req *rq = op->ctx;
	enum connect_code code;
	char msg[400];
	if (failed(c, &code, msg, sizeof(msg))) {
		gw_reply_connect_error(rq, code, "%s", msg);
	} else if (c->stdout_truncated) {
		gw_reply_connect_error(rq, CONNECT_RESOURCE_EXHAUSTED, "listing over max_output_bytes");
	} else {
		json_t *arr = entries(c->stdout_data, c->stdout_len);
		switch (rq->route.kind) {
		case GW_R_FS_LIST:
			gw_reply_json(rq, 200, json_pack("{s:o}", "entries", arr));
			arr = NULL;
			break;
		case GW_R_FS_REMOVE:
			gw_reply_json(rq, 200, json_object());
			break;
		default:
			if (json_array_size(arr))
				gw_reply_json(rq, 200, json_pack("{s:O}", "entry", json_array_get(arr, 0)));
			else
				gw_reply_connect_error(rq, CONNECT_NOT_FOUND, "path does not exist");
		}
		json_decref(arr);
	}
	gw_req_op_done(rq);
}

static void fs_rpc(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	const enum gw_route_kind k = rq->route.kind;
	const char *p1 = json_string_value(json_object_get(body, k == GW_R_FS_MOVE ? "source" : "path"));
	const char *p2 = k == GW_R_FS_MOVE ? json_string_value(json_object_get(body, "destination")) : NULL;
	if (!p1 || !*p1 || (k == GW_R_FS_MOVE && (!p2 || !*p2))) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "a path is required");
		return;
	}
	char *a = gw_abs_path(rq->g, p1), *b = p2 ? gw_abs_path(rq->g, p2) : NULL;
	char depth[16];
	json_t *d = json_object_get(body, "depth");
	snprintf(depth, sizeof(depth), "%lld",
		 json_is_integer(d) && json_integer_value(d) > 0 ? (long long)json_integer_value(d) : 1ll);
	int rc = !a || (p2 && !b) ? -ENOMEM : 0;
	if (!rc) {
		switch (k) {
		case GW_R_FS_STAT:
			rc = script(rq, sb, S_STAT, a, FIND_FMT, NULL, NULL, 0, fs_done);
			break;
		case GW_R_FS_LIST:
			rc = script(rq, sb, S_LIST, a, FIND_FMT, depth, NULL, 0, fs_done);
			break;
		case GW_R_FS_MKDIR:
			rc = script(rq, sb, S_MKDIR, a, FIND_FMT, NULL, NULL, 0, fs_done);
			break;
		case GW_R_FS_REMOVE:
			rc = script(rq, sb, S_REMOVE, a, NULL, NULL, NULL, 0, fs_done);
			break;
		default:
			rc = script(rq, sb, S_MOVE, a, FIND_FMT, b, NULL, 0, fs_done);
		}
	}
	if (rc)
		gw_reply_connect_error(rq, CONNECT_INTERNAL, "out of memory");
	free(a);
	free(b);
}

/* ---------------------------------------------------------------- REST /files */

static unsigned http_of(enum connect_code c)
{
	return c == CONNECT_NOT_FOUND            ? 404
	       : c == CONNECT_INVALID_ARGUMENT   ? 400
	       : c == CONNECT_PERMISSION_DENIED  ? 401
	       : c == CONNECT_RESOURCE_EXHAUSTED ? 507
	       : c == CONNECT_ABORTED            ? 502
	       : c == CONNECT_DEADLINE_EXCEEDED  ? 504
						 : 500;
}

static void read_done(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_req *rq = op->ctx;
	enum connect_code code;
	char msg[400];
	if (failed(c, &code, msg, sizeof(msg)))
		gw_reply_error(rq, http_of(code), "%s", msg);
	else if (c->stdout_truncated)
		gw_reply_error(rq, 507, "file larger than max_output_bytes (%u)",
			       rq->g->cfg.max_output_bytes);
	else
		gw_reply(rq, 200, "application/octet-stream", c->stdout_data, c->stdout_len);
	gw_req_op_done(rq);
}

static void write_done(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_req *rq = op->ctx;
	enum connect_code code;
	char msg[400];
	if (!rq->failed && failed(c, &code, msg, sizeof(msg))) {
		rq->failed = true;
		gw_reply_error(rq, http_of(code), "%s", msg);
	}
	if (rq->pending == 1 && !rq->failed) /* the last one: answer with every file written */
		gw_reply_json(rq, 200, json_incref(rq->result));
	gw_req_op_done(rq);
}

static void files_post(struct gw_req *rq, struct gw_sandbox *sb)
{
	const char *qpath = gw_req_query(rq, "path");
	if (!rq->nup) { /* application/octet-stream: the body is the file */
		if (!qpath) {
			gw_reply_error(
			    rq, 400, "no file in the request (multipart part \"file\" or ?path= and a body)");
			return;
		}
		if (!(rq->up = calloc(1, sizeof(*rq->up))) || !(rq->up[0].path = strdup(qpath))) {
			gw_reply_error(rq, 500, "out of memory");
			return;
		}
		rq->nup = 1;
		rq->up[0].data = (uint8_t *)rq->body;
		rq->up[0].len = rq->len;
		rq->body = NULL;
		rq->len = rq->cap = 0;
	}
	rq->result = json_array();
	for (unsigned i = 0; i < rq->nup; i++) {
		/* One file: ?path= names it; several: each part's filename is its path. */
		char *p = gw_abs_path(rq->g, rq->nup == 1 && qpath ? qpath : rq->up[i].path);
		const char *slash = p ? strrchr(p, '/') : NULL;
		if (!p || script(rq, sb, S_WRITE, p, NULL, NULL, rq->up[i].data, rq->up[i].len, write_done)) {
			free(p);
			if (!rq->pending)
				gw_reply_error(rq, 500, "out of memory");
			return;
		}
		json_array_append_new(
		    rq->result, json_pack("{s:o,s:o,s:s}", "name", gw_json_text(slash + 1, strlen(slash + 1)),
					  "path", gw_json_text(p, strlen(p)), "type", "file"));
		free(p);
	}
}

static void files_get(struct gw_req *rq, struct gw_sandbox *sb)
{
	const char *q = gw_req_query(rq, "path");
	if (!q || !*q) {
		gw_reply_error(rq, 400, "the path query parameter is required");
		return;
	}
	char *p = gw_abs_path(rq->g, q);
	if (!p || script(rq, sb, S_READ, p, NULL, NULL, NULL, 0, read_done))
		gw_reply_error(rq, 500, "out of memory");
	free(p);
}

/* The request message of a Connect call: enveloped for streams, plain JSON for unary. */
static json_t *rpc_body(struct gw_req *rq)
{
	if (!rq->route.streaming)
		return gw_req_json(rq);
	uint8_t flags;
	const uint8_t *msg;
	uint32_t len;
	long n = connect_envelope_read((const uint8_t *)rq->body, rq->len, rq->g->cfg.max_body_bytes, &flags,
				       &msg, &len);
	if (n <= 0 || (size_t)n != rq->len) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "expected one enveloped JSON message");
		return NULL;
	}
	json_error_t e;
	json_t *j = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &e);
	if (!json_is_object(j)) {
		json_decref(j);
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "invalid JSON message: %s", e.text);
		return NULL;
	}
	return j;
}

void gw_envd(struct gw_req *rq, struct gw_sandbox *sb)
{
	const enum gw_route_kind k = rq->route.kind;
	if (k == GW_R_HEALTH) {
		gw_reply(rq, 204, NULL, "", 0);
		return;
	}
	if (k == GW_R_FILES_GET) {
		files_get(rq, sb);
		return;
	}
	if (k == GW_R_FILES_POST) {
		files_post(rq, sb);
		return;
	}
	if (k == GW_R_RPC_UNSUPPORTED) {
		gw_reply_connect_error(rq, CONNECT_UNIMPLEMENTED, "%s is not supported by rollout-gateway",
				       rq->route.feature);
		return;
	}
	json_t *body = rpc_body(rq);
	if (!body)
		return;
	if (k >= GW_R_FS_STAT && k <= GW_R_FS_MOVE)
		fs_rpc(rq, sb, body);
	else
		gw_process_rpc(rq, sb, body);
	json_decref(body);
}
