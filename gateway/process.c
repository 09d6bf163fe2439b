/* envd's process.Process service over Connect: Start (a stream of start, data and end
 * events), Connect, List, SendSignal, SendInput and CloseStdin. A command is one Exec of
 * rollout-pool with its output streamed: the start event is sent at once, data events as
 * the output arrives, the end event when the exec completes. SendSignal reaches the
 * command's process group through the pool. The pool runs one action at a time per
 * sandbox, so a background command holds the sandbox until it ends; a command started
 * with stdin is executed when its stdin is closed, with everything sent before as its
 * stdin. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"

#define DATA_CHUNK (64u << 10)

static json_t *event(const char *kind, json_t *body)
{
	return json_pack("{s:{s:o}}", "event", kind, body);
}

void gw_proc_detach_stream(struct gw_stream *s)
{
	if (!s->proc)
		return;
	for (struct gw_stream **pp = &s->proc->streams; *pp; pp = &(*pp)->pnext)
		if (*pp == s) {
			*pp = s->pnext;
			break;
		}
	s->proc = NULL;
}

static void subscribe(struct gw_proc *p, struct gw_stream *s)
{
	s->proc = p;
	s->pnext = p->streams;
	p->streams = s;
	gw_stream_msg(s, event("start", json_pack("{s:i}", "pid", (json_int_t)p->pid)));
}

/* Sends the output of a finished exec to one stream as data events. */
static void send_output(struct gw_stream *s, const char *which, const uint8_t *d, size_t n)
{
	for (size_t off = 0; off < n; off += DATA_CHUNK) {
		size_t k = n - off < DATA_CHUNK ? n - off : DATA_CHUNK;
		gw_stream_msg(s, event("data", json_pack("{s:o}", which, gw_json_bytes_b64(d + off, k))));
	}
}

static void end_all(struct gw_proc *p, json_t *end_event, enum connect_code code, const char *msg)
{
	while (p->streams) {
		struct gw_stream *s = p->streams;
		if (end_event)
			gw_stream_msg(s, json_incref(end_event));
		gw_stream_end(s, code, msg); /* detaches s */
	}
	json_decref(end_event);
}

static json_t *end_json(int exit_code, bool exited, const char *status, const char *error)
{
	json_t *e =
	    json_pack("{s:i,s:b,s:s}", "exitCode", (json_int_t)exit_code, "exited", exited, "status", status);
	if (e && error)
		json_object_set_new(e, "error", json_string(error));
	return event("end", e);
}

/* Data events for the bytes of one stream not sent yet: at offset off of the stream (a
 * streamed chunk; after a gap it waits for the completion) or, final, the whole stream. */
static void forward(struct gw_proc *p, int which, uint64_t off, const uint8_t *d, size_t n, bool final)
{
	uint64_t *sent = &p->sent[which];
	if (final)
		off = 0;
	else if (off != *sent)
		return;
	if (off + n <= *sent)
		return;
	size_t skip = (size_t)(*sent - off);
	for (struct gw_stream *s = p->streams; s; s = s->pnext)
		send_output(s, which ? "stderr" : "stdout", d + skip, n - skip);
	*sent = off + n;
}

static void exec_partial(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_proc *p = op->ctx;
	forward(p, 0, c->stdout_offset, c->stdout_data, c->stdout_len, false);
	forward(p, 1, c->stderr_offset, c->stderr_data, c->stderr_len, false);
}

static void exec_done(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_proc *p = op->ctx;
	struct gw_sandbox *sb = p->sb;
	struct gw *g = sb->gw;
	gw_metrics_exec(g->m, c->status, gw_now_ns() - op->t0_ns);
	forward(p, 0, 0, c->stdout_data, c->stdout_len, true);
	forward(p, 1, 0, c->stderr_data, c->stderr_len, true);
	char st[64];
	if (c->status == 8 /* CANCELLED */ && p->signalled && !sb->dead) {
		/* killed while still queued behind another action: it never ran */
		end_all(p, end_json(-1, false, "signal: killed", "signal: killed"), CONNECT_OK, NULL);
	} else if (c->status == 0 && c->signal) {
		snprintf(st, sizeof(st), "signal: %s",
			 sigabbrev_np(c->signal) ? sigabbrev_np(c->signal) : "unknown");
		end_all(p, end_json(-1, false, st, st), CONNECT_OK, NULL);
	} else if (c->status == 0) {
		snprintf(st, sizeof(st), "exit status %d", c->exit_code);
		end_all(p, end_json(c->exit_code, true, st, c->exit_code ? st : NULL), CONNECT_OK, NULL);
	} else if (c->status == 6 /* MEMORY_LIMIT: the command's own doing */) {
		end_all(p, end_json(-1, false, "signal: killed", "killed at the memory limit of the sandbox"),
			CONNECT_OK, NULL);
	} else if (c->status == 1 /* TIMEOUT */) {
		end_all(p, NULL, CONNECT_DEADLINE_EXCEEDED,
			c->message ? c->message : "the command ran past its timeout and was killed");
	} else if (sb->dead && (c->status == 8 /* CANCELLED */ || c->status == 5 /* NOT_FOUND */)) {
		end_all(p, NULL, CONNECT_UNAVAILABLE, "the sandbox was killed while the command ran");
	} else if (c->infra_failed) {
		char m[400];
		snprintf(m, sizeof(m),
			 "rollout infrastructure failed (%s, infra_failed): %s; the command's own result is "
			 "unknown",
			 rollout_status_name(c->status), c->message ? c->message : "");
		end_all(p, NULL, CONNECT_ABORTED, m);
	} else {
		char m[400];
		snprintf(m, sizeof(m), "rolloutd %s: %s", rollout_status_name(c->status),
			 c->message ? c->message : "");
		end_all(p, NULL, c->status == 4 ? CONNECT_INVALID_ARGUMENT : CONNECT_INTERNAL, m);
	}
	gw_proc_free(p);
	gw_sandbox_unref(sb);
}

/* Submits the prepared exec of p. */
static void run(struct gw_proc *p)
{
	struct gw_op *op = p->op;
	p->op = NULL;
	p->state = GW_PROC_RUNNING;
	op->in = p->in;
	op->in_len = p->in_len;
	p->in = NULL;
	p->in_len = 0;
	gw_sandbox_ref(p->sb);
	gw_backend_submit(&p->sb->gw->be, op);
	p->exec_id = op->id; /* op is freed at a poll at the earliest */
}

void gw_procs_keepalive(struct gw_sandbox *sb, int64_t now, int64_t interval)
{
	/* Like envd: a quiet stream still carries an event now and then, so idle timeouts of
	 * clients and proxies (undici drops a body silent for 300 s) do not cut it. */
	for (struct gw_proc *p = sb->procs; p; p = p->next)
		for (struct gw_stream *s = p->streams; s; s = s->pnext)
			if (now - s->last_ms >= interval)
				gw_stream_msg(s, event("keepalive", json_object()));
}

void gw_procs_abort(struct gw_sandbox *sb)
{
	/* Commands that never reached the pool (waiting for stdin) end with the sandbox;
	 * the others end when their exec completes (cancelled by the close). */
	for (struct gw_proc *p = sb->procs, *nx; p; p = nx) {
		nx = p->next;
		if (p->state == GW_PROC_WAIT_STDIN) {
			end_all(p, NULL, CONNECT_UNAVAILABLE, "the sandbox was killed");
			gw_proc_free(p);
		}
	}
}

/* The SDK runs every command as `/bin/bash -l -c CMD`. Sandboxes get their environment
 * from the pool profile, so by default the login profile (~8 ms per command) is skipped. */
static bool is_login_bash(const char *cmd, json_t *args)
{
	const char *a0 = json_string_value(json_array_get(args, 0));
	return (!strcmp(cmd, "/bin/bash") || !strcmp(cmd, "bash")) && a0 && !strcmp(a0, "-l");
}

static struct gw_op *build_exec(struct gw_req *rq, struct gw_sandbox *sb, json_t *proc, struct gw_proc *p)
{
	struct gw *g = rq->g;
	const char *cmd = json_string_value(json_object_get(proc, "cmd"));
	json_t *args = json_object_get(proc, "args"), *envs = json_object_get(proc, "envs");
	const char *cwd = json_string_value(json_object_get(proc, "cwd"));
	if (!cmd || !*cmd || (args && !json_is_array(args)) || (envs && !json_is_object(envs)) ||
	    json_array_size(args) > 250) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT,
				       "process.cmd is required; args a list, envs a map");
		return NULL;
	}
	const char *argv[260];
	size_t n = 0, i = 0;
	/* The pool starts commands in the work area and cannot enter another cwd itself
	 * (see docs/gateway.md): a shell changes directory, then execs the command. */
	char *dir = cwd && *cwd ? gw_abs_path(g, cwd) : NULL;
	if (dir && strcmp(dir, g->cfg.workdir)) {
		argv[n++] = "/bin/sh";
		argv[n++] = "-c";
		argv[n++] = "cd -- \"$0\" && exec \"$@\"";
		argv[n++] = dir;
	}
	argv[n++] = cmd;
	if (!g->cfg.login_shell && is_login_bash(cmd, args))
		i = 1;
	for (; i < json_array_size(args); i++) {
		const char *a = json_string_value(json_array_get(args, i));
		if (!a) {
			free(dir);
			gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "process.args must be strings");
			return NULL;
		}
		argv[n++] = a;
	}
	argv[n] = NULL;
	struct gw_op *op = gw_op_new(GW_OP_EXEC, exec_done, p);
	int rc = op ? gw_op_set_argv(op, argv) : -ENOMEM;
	const char *k;
	json_t *v;
	json_object_foreach(sb->envs, k, v) if (!rc && !json_object_get(envs, k)) rc =
	    gw_op_add_env(op, k, json_string_value(v));
	json_object_foreach(envs, k, v) if (!rc) rc =
	    json_is_string(v) ? gw_op_add_env(op, k, json_string_value(v)) : -EINVAL;
	free(dir);
	if (rc) {
		gw_op_free(op);
		gw_reply_connect_error(rq, rc == -ENOMEM ? CONNECT_INTERNAL : CONNECT_INVALID_ARGUMENT,
				       "cannot build the command: %s",
				       rc == -E2BIG    ? "over 128 environment variables"
				       : rc == -ENOMEM ? "out of memory"
						       : "envs must be strings");
		return NULL;
	}
	/* The SDK's timeoutMs travels as Connect-Timeout-Ms; without it the profile's default. */
	const char *tmo = gw_req_header(rq, "Connect-Timeout-Ms");
	unsigned long long ms = tmo ? strtoull(tmo, NULL, 10) : 0;
	op->timeout_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	op->output_cap = g->cfg.max_output_bytes;
	op->sandbox = sb->rsb;
	op->stream = true;
	op->partial = exec_partial;
	return op;
}

static void start(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	json_t *proc = json_object_get(body, "process");
	if (!json_is_object(proc)) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "process is required");
		return;
	}
	if (json_object_get(body, "pty") && !json_is_null(json_object_get(body, "pty"))) {
		gw_reply_connect_error(rq, CONNECT_UNIMPLEMENTED,
				       "PTY is not supported: rollout-pool runs commands "
				       "with pipes");
		return;
	}
	struct gw_proc *p = gw_proc_new(sb);
	if (!p) {
		gw_reply_connect_error(rq, CONNECT_INTERNAL, "out of memory");
		return;
	}
	struct gw_op *op = build_exec(rq, sb, proc, p);
	if (!op) {
		gw_proc_free(p);
		return;
	}
	p->op = op;
	p->config = json_incref(proc);
	const char *tag = json_string_value(json_object_get(body, "tag"));
	p->tag = tag ? strdup(tag) : NULL;
	struct gw_stream *s = gw_stream_open(rq);
	if (s)
		subscribe(p, s);
	if (json_is_true(json_object_get(body, "stdin")))
		p->state = GW_PROC_WAIT_STDIN; /* runs at CloseStdin with what was sent */
	else
		run(p);
}

static struct gw_proc *selected(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	json_t *proc = json_object_get(body, "process");
	/* protobuf JSON puts the oneof's members straight into the message. */
	json_t *pid = json_object_get(proc, "pid"), *tag = json_object_get(proc, "tag");
	struct gw_proc *p = NULL;
	if (json_is_integer(pid))
		p = gw_proc_find(sb, (uint32_t)json_integer_value(pid), NULL);
	else if (json_is_string(tag))
		p = gw_proc_find(sb, 0, json_string_value(tag));
	else {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT,
				       "process.pid or process.tag is required");
		return NULL;
	}
	if (!p || p->state == GW_PROC_ENDED)
		gw_reply_connect_error(rq, CONNECT_NOT_FOUND, "process not found");
	return p && p->state != GW_PROC_ENDED ? p : NULL;
}

static void list(struct gw_req *rq, struct gw_sandbox *sb)
{
	json_t *arr = json_array();
	for (struct gw_proc *p = sb->procs; p; p = p->next) {
		json_t *o = json_pack("{s:O,s:i}", "config", p->config, "pid", (json_int_t)p->pid);
		if (o && p->tag)
			json_object_set_new(o, "tag", json_string(p->tag));
		json_array_append_new(arr, o);
	}
	gw_reply_json(rq, 200, json_pack("{s:o}", "processes", arr));
}

/* envd's Signal enum in protobuf JSON: its name, or its number. 0 for anything else. */
static int signal_number(json_t *v)
{
	const char *name = json_string_value(v);
	json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
	if ((name && !strcmp(name, "SIGNAL_SIGKILL")) || n == SIGKILL)
		return SIGKILL;
	if ((name && !strcmp(name, "SIGNAL_SIGTERM")) || n == SIGTERM)
		return SIGTERM;
	return 0;
}

static void signal_done(struct gw_op *op, const struct rollout_completion *c)
{
	struct gw_req *rq = op->ctx;
	if (c->status == 0)
		gw_reply_json(rq, 200, json_object());
	else if (c->status == 5 /* NOT_FOUND: it ended meanwhile */)
		gw_reply_connect_error(rq, CONNECT_NOT_FOUND, "process not found");
	else
		gw_reply_connect_error(rq, c->infra_failed ? CONNECT_ABORTED : CONNECT_INTERNAL,
				       "rolloutd %s: %s", rollout_status_name(c->status),
				       c->message ? c->message : "");
	gw_req_op_done(rq);
}

static void signal_proc(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	struct gw_proc *p = selected(rq, sb, body);
	if (!p)
		return;
	if (p->state == GW_PROC_WAIT_STDIN) {
		/* Never reached the pool: it can be stopped for real. */
		end_all(p, end_json(-1, false, "signal: killed", "signal: killed"), CONNECT_OK, NULL);
		gw_proc_free(p);
		gw_reply_json(rq, 200, json_object());
		return;
	}
	int sig = signal_number(json_object_get(body, "signal"));
	if (!sig) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT,
				       "signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM (or 9, 15)");
		return;
	}
	struct gw_op *op = gw_op_new(GW_OP_SIGNAL, signal_done, rq);
	if (!op) {
		gw_reply_connect_error(rq, CONNECT_INTERNAL, "out of memory");
		return;
	}
	op->sandbox = sb->rsb;
	op->target = p->exec_id;
	op->signo = sig;
	p->signalled = true;
	rq->pending++;
	gw_backend_submit(&rq->g->be, op);
}

static void input(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	struct gw_proc *p = selected(rq, sb, body);
	if (!p)
		return;
	const char *in = json_string_value(json_object_get(json_object_get(body, "input"), "stdin"));
	if (!in) {
		gw_reply_connect_error(rq,
				       json_object_get(json_object_get(body, "input"), "pty")
					   ? CONNECT_UNIMPLEMENTED
					   : CONNECT_INVALID_ARGUMENT,
				       "input.stdin (bytes) is required; PTY input is not supported");
		return;
	}
	if (p->state != GW_PROC_WAIT_STDIN) {
		gw_reply_connect_error(rq, CONNECT_FAILED_PRECONDITION,
				       "the command was started without stdin or its stdin is closed");
		return;
	}
	size_t cap = strlen(in) / 4 * 3 + 3;
	if (p->in_len + cap > rq->g->cfg.max_body_bytes) {
		gw_reply_connect_error(rq, CONNECT_RESOURCE_EXHAUSTED, "stdin over max_body_bytes");
		return;
	}
	uint8_t *nb = realloc(p->in, p->in_len + cap);
	long n = nb ? gw_b64_decode(in, nb + p->in_len, cap) : -ENOMEM;
	if (nb)
		p->in = nb;
	if (n < 0) {
		gw_reply_connect_error(rq, CONNECT_INVALID_ARGUMENT, "input.stdin is not base64");
		return;
	}
	p->in_len += (size_t)n;
	gw_reply_json(rq, 200, json_object());
}

static void close_stdin(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	struct gw_proc *p = selected(rq, sb, body);
	if (!p)
		return;
	if (p->state == GW_PROC_WAIT_STDIN)
		run(p);
	gw_reply_json(rq, 200, json_object());
}

static void connect_proc(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	struct gw_proc *p = selected(rq, sb, body);
	if (!p)
		return;
	struct gw_stream *s = gw_stream_open(rq);
	if (s)
		subscribe(p, s);
}

void gw_process_rpc(struct gw_req *rq, struct gw_sandbox *sb, json_t *body)
{
	switch (rq->route.kind) {
	case GW_R_PROC_START:
		start(rq, sb, body);
		break;
	case GW_R_PROC_CONNECT:
		connect_proc(rq, sb, body);
		break;
	case GW_R_PROC_LIST:
		list(rq, sb);
		break;
	case GW_R_PROC_SIGNAL:
		signal_proc(rq, sb, body);
		break;
	case GW_R_PROC_INPUT:
		input(rq, sb, body);
		break;
	case GW_R_PROC_CLOSE_STDIN:
		close_stdin(rq, sb, body);
		break;
	default:
		gw_reply_connect_error(rq, CONNECT_UNIMPLEMENTED, "not a process RPC");
	}
}
