/* Synchronous pool client (see client.h). */
#include "client.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "rollout_wire.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Out of memory leaves a zero-sized builder: every build then fails with -ENOSPC. */
static struct fb_builder *out_builder(struct pc *c, size_t need)
{
	static struct fb_builder b;
	if (c->out_cap < need) {
		size_t cap = (need + 65535) & ~(size_t)65535;
		uint8_t *o = aligned_alloc(8, cap);
		if (o) {
			free(c->out);
			c->out = o;
			c->out_cap = cap;
		}
	}
	fb_builder_init(&b, c->out, c->out ? c->out_cap : 0);
	return &b;
}

static int send_msg(struct pc *c, struct fb_builder *b, uint64_t dispatch, int kind, fb_ref_t body)
{
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, dispatch);
	rw_Message_add_body(b, (uint8_t)kind, body);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (n < 0)
		return (int)n;
	return pc_send_raw(c, c->out, (size_t)n);
}

int pc_send_raw(struct pc *c, const void *buf, size_t len)
{
	return zmq_send(c->sock, buf, len, 0) < 0 ? -errno : 0;
}

static int connect_ex(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		      const char *spub, const char *pub, const char *sec, int timeout_ms, const char *rid);

int pc_connect(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms)
{
	return connect_ex(c, endpoint, identity, lease_ms, NULL, NULL, NULL, 5000, NULL);
}

int pc_connect_as(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		  const char *routing_id, bool wait_hello)
{
	return connect_ex(c, endpoint, identity, lease_ms, NULL, NULL, NULL, wait_hello ? 5000 : 0,
			  routing_id);
}

int pc_connect_curve(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		     const char *server_public, const char *public_key, const char *secret_key,
		     int timeout_ms)
{
	return connect_ex(c, endpoint, identity, lease_ms, server_public, public_key, secret_key, timeout_ms,
			  NULL);
}

static int connect_ex(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		      const char *spub, const char *pub, const char *sec, int timeout_ms, const char *rid)
{
	memset(c, 0, sizeof(*c));
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
	if (!c->sock)
		return -errno;
	int zero = 0;
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    (rid && zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, rid, strlen(rid)) < 0))
		return -errno;
	if (spub && (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, spub, 41) < 0 ||
		     zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, 41) < 0 ||
		     zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, 41) < 0))
		return -errno;
	if (zmq_connect(c->sock, endpoint) < 0)
		return -errno;
	struct fb_builder *b = out_builder(c, 4096);
	fb_ref_t id = fb_create_string(b, identity);
	fb_ref_t ver = fb_create_string(b, "test");
	rw_CoordinatorHello_start(b);
	rw_CoordinatorHello_add_identity(b, id);
	rw_CoordinatorHello_add_version(b, ver);
	rw_CoordinatorHello_add_schema_version(b, rw_SchemaVersion_Current);
	rw_CoordinatorHello_add_lease_ms(b, lease_ms);
	int rc = send_msg(c, b, 0, rw_Body_CoordinatorHello, rw_CoordinatorHello_end(b));
	if (rc || timeout_ms == 0)
		return rc;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (now_ms() < end) {
		int t = pc_recv(c, (int)(end - now_ms()));
		if (t == rw_Body_PoolHello)
			return 0;
		if (t < 0 && t != -EAGAIN)
			return t;
	}
	return -ETIMEDOUT;
}

void pc_close(struct pc *c)
{
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c->buf);
	free(c->out);
	memset(c, 0, sizeof(*c));
}

int pc_recv(struct pc *c, int timeout_ms)
{
	zmq_pollitem_t it = { .socket = c->sock, .events = ZMQ_POLLIN };
	int n = zmq_poll(&it, 1, timeout_ms);
	if (n <= 0)
		return n == 0 ? -EAGAIN : -errno;
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, c->sock, 0) < 0) {
		zmq_msg_close(&m);
		return -errno;
	}
	size_t len = zmq_msg_size(&m);
	if (len + 8 > c->cap) {
		size_t cap = (len + 8 + 65535) & ~(size_t)65535;
		uint8_t *nb = aligned_alloc(8, cap);
		if (!nb) {
			zmq_msg_close(&m);
			return -ENOMEM;
		}
		free(c->buf);
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf, zmq_msg_data(&m), len);
	c->len = len;
	zmq_msg_close(&m);
	if (rw_Message_verify(c->buf, len) != 0)
		return -EBADMSG;
	return rw_Message_body_type(rw_Message_root(c->buf));
}

int pc_heartbeat(struct pc *c, uint64_t seq)
{
	struct fb_builder *b = out_builder(c, 256);
	rw_Heartbeat_start(b);
	rw_Heartbeat_add_seq(b, seq);
	return send_msg(c, b, 0, rw_Body_Heartbeat, rw_Heartbeat_end(b));
}

void pc_result_of(struct pc *c, struct pc_result *r)
{
	memset(r, 0, sizeof(*r));
	const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(c->buf));
	r->status = rw_Completion_status(k);
	r->infra = rw_Completion_infra_failed(k);
	r->message = rw_Completion_message(k);
	const rw_Opened_t *o = rw_Completion_result_as_Opened(k);
	if (o)
		r->sandbox = rw_Opened_sandbox(o);
	const rw_ExecResult_t *e = rw_Completion_result_as_ExecResult(k);
	if (e) {
		r->exit_code = rw_ExecResult_exit_code(e);
		r->signal = rw_ExecResult_signal(e);
		r->out_len = rw_ExecResult_stdout(e, &r->out);
		r->err_len = rw_ExecResult_stderr(e, &r->err);
		r->out_trunc = rw_ExecResult_stdout_truncated(e);
		r->err_trunc = rw_ExecResult_stderr_truncated(e);
		r->wall_us = rw_ExecResult_wall_us(e);
		r->cpu_us = rw_ExecResult_cpu_us(e);
		r->peak_kib = rw_ExecResult_peak_memory_kib(e);
	}
	r->checkpoint = rw_Completion_checkpoint(k);
	r->checkpoint_rid = rw_Completion_checkpoint_request_id(k);
	const rw_Snapshotted_t *sn = rw_Completion_result_as_Snapshotted(k);
	if (sn) {
		r->snapshot = rw_Snapshotted_snapshot(sn);
		r->snapshot_bytes = rw_Snapshotted_bytes(sn);
		r->snapshot_files = rw_Snapshotted_files(sn);
		r->frozen_us = rw_Snapshotted_frozen_us(sn);
	}
	const rw_FileData_t *f = rw_Completion_result_as_FileData(k);
	if (f) {
		r->data_len = rw_FileData_data(f, &r->data);
		r->data_trunc = rw_FileData_truncated(f);
	}
}

int pc_wait(struct pc *c, uint64_t dispatch, struct pc_result *r, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t now = now_ms();
		if (now >= end)
			return -ETIMEDOUT;
		int t = pc_recv(c, (int)(end - now));
		if (t == -EAGAIN)
			continue;
		if (t < 0)
			return t;
		if (t == rw_Body_Completion && rw_Message_dispatch_id(rw_Message_root(c->buf)) == dispatch) {
			pc_result_of(c, r);
			return 0;
		}
	}
}

static int request(struct pc *c, struct fb_builder *b, int akind, fb_ref_t action, struct pc_result *r,
		   int timeout_ms)
{
	uint64_t d = ++c->next_dispatch;
	rw_Request_start(b);
	rw_Request_add_request_id(b, d * 10);
	rw_Request_add_action(b, (uint8_t)akind, action);
	int rc = send_msg(c, b, d, rw_Body_Request, rw_Request_end(b));
	return rc ? rc : pc_wait(c, d, r, timeout_ms);
}

int pc_open(struct pc *c, const char *profile, struct pc_result *r, int timeout_ms)
{
	struct fb_builder *b = out_builder(c, 4096);
	fb_ref_t name = fb_create_string(b, profile);
	rw_Open_start(b);
	rw_Open_add_profile(b, name);
	return request(c, b, rw_Action_Open, rw_Open_end(b), r, timeout_ms);
}

static int send_request(struct pc *c, struct fb_builder *b, uint64_t dispatch, int akind, fb_ref_t action)
{
	rw_Request_start(b);
	rw_Request_add_request_id(b, dispatch * 10);
	rw_Request_add_action(b, (uint8_t)akind, action);
	return send_msg(c, b, dispatch, rw_Body_Request, rw_Request_end(b));
}

static fb_ref_t build_open(struct fb_builder *b, const char *profile, const char *snapshot, uint32_t every)
{
	fb_ref_t name = fb_create_string(b, profile);
	fb_ref_t snap = snapshot ? fb_create_string(b, snapshot) : 0;
	rw_Open_start(b);
	rw_Open_add_profile(b, name);
	if (snap)
		rw_Open_add_snapshot(b, snap);
	rw_Open_add_checkpoint_every(b, every);
	return rw_Open_end(b);
}

int pc_open_ex(struct pc *c, const char *profile, const char *snapshot, uint32_t checkpoint_every,
	       struct pc_result *r, int timeout_ms)
{
	struct fb_builder *b = out_builder(c, 4096);
	return request(c, b, rw_Action_Open, build_open(b, profile, snapshot, checkpoint_every), r,
		       timeout_ms);
}

int pc_send_open_ex(struct pc *c, uint64_t dispatch, const char *profile, const char *snapshot)
{
	struct fb_builder *b = out_builder(c, 4096);
	return send_request(c, b, dispatch, rw_Action_Open, build_open(b, profile, snapshot, 0));
}

int pc_snapshot(struct pc *c, uint64_t sandbox, bool checkpoint, struct pc_result *r, int timeout_ms)
{
	struct fb_builder *b = out_builder(c, 256);
	rw_Snapshot_start(b);
	rw_Snapshot_add_sandbox(b, sandbox);
	rw_Snapshot_add_checkpoint(b, checkpoint);
	return request(c, b, rw_Action_Snapshot, rw_Snapshot_end(b), r, timeout_ms);
}

static fb_ref_t build_exec(struct fb_builder *b, uint64_t sandbox, const char *shell, const char *const *argv,
			   const void *in, size_t in_len, uint32_t timeout_ms, uint32_t cap)
{
	fb_ref_t sh = shell ? fb_create_string(b, shell) : 0, av = 0;
	if (argv) {
		fb_ref_t refs[64];
		size_t n = 0;
		while (argv[n] && n < 64) {
			refs[n] = fb_create_string(b, argv[n]);
			n++;
		}
		av = fb_create_vec_ref(b, refs, n);
	}
	fb_ref_t si = in ? fb_create_vec_u8(b, in, in_len) : 0;
	rw_Exec_start(b);
	rw_Exec_add_sandbox(b, sandbox);
	rw_Exec_add_shell(b, sh);
	rw_Exec_add_argv(b, av);
	rw_Exec_add_stdin(b, si);
	rw_Exec_add_timeout_ms(b, timeout_ms);
	rw_Exec_add_output_cap(b, cap);
	return rw_Exec_end(b);
}

int pc_exec(struct pc *c, uint64_t sandbox, const char *shell, const char *const *argv, const void *in,
	    size_t in_len, uint32_t timeout_ms, uint32_t cap, struct pc_result *r, int wait_ms)
{
	struct fb_builder *b = out_builder(c, 65536 + in_len);
	fb_ref_t e = build_exec(b, sandbox, shell, argv, in, in_len, timeout_ms, cap);
	return request(c, b, rw_Action_Exec, e, r, wait_ms);
}

int pc_send_exec(struct pc *c, uint64_t dispatch, uint64_t sandbox, const char *shell, uint32_t timeout_ms)
{
	struct fb_builder *b = out_builder(c, 65536);
	fb_ref_t e = build_exec(b, sandbox, shell, NULL, NULL, 0, timeout_ms, 0);
	rw_Request_start(b);
	rw_Request_add_request_id(b, dispatch * 10);
	rw_Request_add_action(b, rw_Action_Exec, e);
	return send_msg(c, b, dispatch, rw_Body_Request, rw_Request_end(b));
}

int pc_send_open(struct pc *c, uint64_t dispatch, const char *profile)
{
	struct fb_builder *b = out_builder(c, 4096);
	fb_ref_t name = fb_create_string(b, profile);
	rw_Open_start(b);
	rw_Open_add_profile(b, name);
	return send_request(c, b, dispatch, rw_Action_Open, rw_Open_end(b));
}

int pc_send_put(struct pc *c, uint64_t dispatch, uint64_t sandbox, const char *path, const void *data,
		size_t len)
{
	struct fb_builder *b = out_builder(c, 4096 + len);
	fb_ref_t p = fb_create_string(b, path);
	fb_ref_t d = fb_create_vec_u8(b, data, len);
	rw_PutFile_start(b);
	rw_PutFile_add_sandbox(b, sandbox);
	rw_PutFile_add_path(b, p);
	rw_PutFile_add_data(b, d);
	return send_request(c, b, dispatch, rw_Action_PutFile, rw_PutFile_end(b));
}

int pc_send_close(struct pc *c, uint64_t dispatch, uint64_t sandbox)
{
	struct fb_builder *b = out_builder(c, 1024);
	rw_Close_start(b);
	rw_Close_add_sandbox(b, sandbox);
	return send_request(c, b, dispatch, rw_Action_Close, rw_Close_end(b));
}

int pc_put(struct pc *c, uint64_t sandbox, const char *path, const void *data, size_t len,
	   struct pc_result *r)
{
	struct fb_builder *b = out_builder(c, 4096 + len);
	fb_ref_t p = fb_create_string(b, path);
	fb_ref_t d = fb_create_vec_u8(b, data, len);
	rw_PutFile_start(b);
	rw_PutFile_add_sandbox(b, sandbox);
	rw_PutFile_add_path(b, p);
	rw_PutFile_add_data(b, d);
	return request(c, b, rw_Action_PutFile, rw_PutFile_end(b), r, 10000);
}

int pc_get(struct pc *c, uint64_t sandbox, const char *path, uint32_t max_bytes, struct pc_result *r)
{
	struct fb_builder *b = out_builder(c, 4096);
	fb_ref_t p = fb_create_string(b, path);
	rw_GetFile_start(b);
	rw_GetFile_add_sandbox(b, sandbox);
	rw_GetFile_add_path(b, p);
	rw_GetFile_add_max_bytes(b, max_bytes);
	return request(c, b, rw_Action_GetFile, rw_GetFile_end(b), r, 10000);
}

int pc_close_sandbox(struct pc *c, uint64_t sandbox, struct pc_result *r)
{
	struct fb_builder *b = out_builder(c, 1024);
	rw_Close_start(b);
	rw_Close_add_sandbox(b, sandbox);
	return request(c, b, rw_Action_Close, rw_Close_end(b), r, 10000);
}

pid_t pc_spawn_pool(const char *binary, const char *config, const char *endpoint, int timeout_ms)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(binary, binary, "--config", config, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -errno;
	struct pc c;
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (now_ms() < end) {
		int rc = pc_connect(&c, endpoint, "probe", 1000);
		pc_close(&c);
		if (rc == 0)
			return pid;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -ECHILD;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -ETIMEDOUT;
}
