/* librollout: attach to rolloutd over its unix socket, map the shared segment, build
 * requests in place in the submission ring and read completions from the completion ring.
 * See include/rollout/rollout.h. */
#include "rollout/rollout.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attach_proto.h"
#include "completion.h"
#include "ring.h"
#include "rollout_wire.h"

/* rolloutd overwrites this in place with its dispatch id; writing it makes the field present. */
#define DISPATCH_PLACEHOLDER UINT64_MAX

struct rollout_client {
	int sock;
	int sq_wake, cq_wake;
	struct shm_seg seg;
	struct shm_writer w;
	struct shm_reader r;
	bool have_cur;
	uint64_t epoch;
	uint64_t sync_id;   /* request ids of the blocking wrappers count down from the top */
	uint32_t last_need; /* bytes the last submission refused with -EAGAIN asked for */
	/* A request over max_record, going into the ring in pieces (nothing passes it). */
	struct {
		uint8_t *buf;
		size_t len, off;
		uint64_t request_id;
		uint8_t *spare;   /* the buffer of the last one, kept for the next (memory */
		size_t spare_cap; /* already touched is several times faster to fill) */
	} out;
	/* A completion over max_record, joined from its pieces. */
	struct {
		uint8_t *buf; /* kept between big completions, like out.spare */
		size_t cap, total, got;
		bool ready; /* buf holds the record rollout_next returned last */
	} in;
};

/* Room a piece record needs besides its data. */
#define PIECE_OVERHEAD 256

static size_t piece_room(const rollout_client *c)
{
	return c->w.g.max_record - PIECE_OVERHEAD;
}

/* Writes pieces of the big request while the ring has room: 0 when all are in, -EAGAIN
 * when some wait, or a ring error. */
static int push_pieces(rollout_client *c)
{
	while (c->out.buf) {
		size_t n = c->out.len - c->out.off;
		if (n > piece_room(c))
			n = piece_room(c);
		int rc;
		void *at = shm_writer_reserve(&c->w, (uint32_t)(n + PIECE_OVERHEAD), &rc);
		if (!at)
			return rc;
		struct fb_builder b;
		fb_builder_init(&b, at, n + PIECE_OVERHEAD);
		ssize_t len = rw_piece_build(&b, c->out.request_id, (uint32_t)c->out.len,
					     (uint32_t)c->out.off, c->out.buf + c->out.off, n);
		if (len < 0) {
			shm_writer_abort(&c->w);
			return ROLLOUT_E_TOO_BIG;
		}
		shm_writer_commit(&c->w, (uint32_t)len);
		c->out.off += n;
		if (c->out.off == c->out.len) {
			c->out.spare = c->out.buf;
			c->out.buf = NULL;
		}
	}
	return 0;
}

/* Pushes every piece of the big request, sleeping for room as rolloutd reads them. */
static int push_all_pieces(rollout_client *c, int timeout_ms)
{
	for (;;) {
		int rc = push_pieces(c);
		if (rc != -EAGAIN)
			return rc;
		shm_writer_publish(&c->w);
		rc = shm_writer_wait(&c->w, (uint32_t)(piece_room(c) + PIECE_OVERHEAD), timeout_ms);
		if (rc)
			return rc;
	}
}

int rollout_connect(const struct rollout_connect_opts *o, rollout_client **out)
{
	struct rollout_connect_opts def = { .gpu = -1 };
	if (!o)
		o = &def;
	const char *path = o->socket_path ? o->socket_path : getenv("ROLLOUTD_SOCKET");
	if (!path)
		path = ROLLOUT_DEFAULT_SOCKET;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	rollout_client *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sq_wake = c->cq_wake = -1;
	c->seg.fd = -1;
	int rc;
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = errno == ENOENT || errno == ECONNREFUSED ? ROLLOUT_E_NOT_CONNECTED : -errno;
		goto fail;
	}
	struct rollout_attach_req req = { .magic = ROLLOUT_ATTACH_MAGIC,
					  .version = ROLLOUT_ATTACH_VERSION,
					  .type = ROLLOUT_ATTACH_REQ,
					  .gpu = o->gpu,
					  .pid = (uint32_t)getpid(),
					  .sq_bytes = o->sq_bytes,
					  .cq_bytes = o->cq_bytes };
	strncpy(req.name, o->name ? o->name : "trainer", sizeof(req.name) - 1);
	if (send(c->sock, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
		rc = -errno;
		goto fail;
	}
	struct pollfd pf = { .fd = c->sock, .events = POLLIN };
	if (poll(&pf, 1, o->timeout_ms > 0 ? o->timeout_ms : 5000) != 1) {
		rc = -ETIMEDOUT;
		goto fail;
	}
	struct rollout_attach_resp resp;
	int fds[ROLLOUT_ATTACH_MAX_FDS];
	unsigned nfds = 0;
	rc = shm_recv_fds(c->sock, &resp, sizeof(resp), fds, ROLLOUT_ATTACH_MAX_FDS, &nfds);
	if (rc < 0)
		goto fail;
	if (rc != (int)sizeof(resp) || resp.magic != ROLLOUT_ATTACH_MAGIC ||
	    resp.version != ROLLOUT_ATTACH_VERSION || resp.type != ROLLOUT_ATTACH_RESP) {
		rc = ROLLOUT_E_PROTOCOL;
		goto fail_fds;
	}
	if (resp.status) {
		rc = resp.status;
		goto fail_fds;
	}
	int segfd = -1;
	for (unsigned i = 0; i < nfds && i < ROLLOUT_ATTACH_MAX_FDS; i++) {
		if (resp.fd_roles[i] == ROLLOUT_FD_SEGMENT && segfd < 0)
			segfd = fds[i];
		else if (resp.fd_roles[i] == ROLLOUT_FD_SQ_WAKE && c->sq_wake < 0)
			c->sq_wake = fds[i];
		else if (resp.fd_roles[i] == ROLLOUT_FD_CQ_WAKE && c->cq_wake < 0)
			c->cq_wake = fds[i];
		else
			close(fds[i]);
	}
	nfds = 0;
	if (segfd < 0 || c->cq_wake < 0) {
		if (segfd >= 0)
			close(segfd);
		rc = ROLLOUT_E_PROTOCOL;
		goto fail;
	}
	rc = shm_seg_attach(&c->seg, segfd, resp.segment_bytes);
	if (rc) {
		close(segfd);
		goto fail;
	}
	if (c->seg.hdr.live.epoch != resp.epoch) {
		rc = ROLLOUT_E_EPOCH;
		goto fail;
	}
	c->epoch = resp.epoch;
	struct shm_waitcfg wc;
	shm_waitcfg_default(&wc);
	wc.peer_fd = c->sock;
	wc.wake_fd = c->sq_wake;
	if ((rc = shm_writer_init(&c->w, &c->seg, SHM_SQ, &wc)))
		goto fail;
	shm_waitcfg_default(&wc);
	wc.peer_fd = c->sock;
	wc.wait_fd = c->cq_wake;
	if ((rc = shm_reader_init(&c->r, &c->seg, SHM_CQ, &wc)))
		goto fail;
	*out = c;
	return 0;
fail_fds:
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
fail:
	rollout_disconnect(c);
	return rc;
}

void rollout_disconnect(rollout_client *c)
{
	if (!c)
		return;
	if (c->sock >= 0 && c->seg.base) {
		struct rollout_detach_req d = { .magic = ROLLOUT_ATTACH_MAGIC,
						.version = ROLLOUT_ATTACH_VERSION,
						.type = ROLLOUT_DETACH_REQ };
		send(c->sock, &d, sizeof(d), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shm_reader_destroy(&c->r);
	if (c->seg.base)
		shm_seg_close(&c->seg);
	if (c->sock >= 0)
		close(c->sock);
	if (c->sq_wake >= 0)
		close(c->sq_wake);
	if (c->cq_wake >= 0)
		close(c->cq_wake);
	free(c->out.buf);
	free(c->out.spare);
	free(c->in.buf);
	free(c);
}

int rollout_fd(const rollout_client *c)
{
	return c->cq_wake;
}

int rollout_peer_fd(const rollout_client *c)
{
	return c->sock;
}

int rollout_check(rollout_client *c)
{
	if (c->r.broken)
		return c->r.broken;
	if (c->w.broken)
		return c->w.broken;
	/* The same order as the ring's own waits: a draining rolloutd marks the segment
	 * before it closes the socket. */
	if (shm_seg_state(&c->seg) == SHM_STATE_CLOSING)
		return ROLLOUT_E_SHUTDOWN;
	return shm_peer_gone(c->sock) ? ROLLOUT_E_PEER_DEAD : 0;
}

int rollout_arm(rollout_client *c)
{
	shm_writer_publish(&c->w);
	/* Drain the wake-up of the last sleep first: an event loop that woke on the fd and read
	 * the completions would otherwise find it readable again at once, and spin. */
	shm_reader_disarm(&c->r);
	return shm_reader_arm(&c->r);
}

/* Reserves room for the largest the request can be, builds it there, commits its size. */
struct build {
	struct fb_builder b;
	void *at;
	int rc;
	bool big; /* built in a buffer of its own, to go in pieces */
};

static int begin(rollout_client *c, struct build *bd, size_t need)
{
	if (c->out.buf && push_pieces(c)) {
		/* Nothing passes a request still going in: retry once it is in. */
		shm_writer_publish(&c->w);
		c->last_need = (uint32_t)(piece_room(c) + PIECE_OVERHEAD);
		return -EAGAIN;
	}
	if (need > c->w.g.max_record) {
		if (need > ROLLOUT_MAX_TRANSFER + 4096)
			return ROLLOUT_E_TOO_BIG;
		/* Built apart, then written in pieces (finish). */
		if (c->out.spare && c->out.spare_cap < need) {
			free(c->out.spare);
			c->out.spare = NULL;
		}
		if (!c->out.spare && (c->out.spare = malloc(need)))
			c->out.spare_cap = need;
		bd->at = c->out.spare;
		bd->rc = bd->at ? 0 : -ENOMEM;
		bd->big = true;
		if (bd->at)
			fb_builder_init(&bd->b, bd->at, need);
		return bd->rc;
	}
	bd->big = false;
	bd->at = shm_writer_reserve(&c->w, (uint32_t)need, &bd->rc);
	if (!bd->at) {
		if (bd->rc == -EAGAIN) {
			/* Make what is committed visible so rolloutd can drain it, and remember
			 * how much room the retry needs (rollout_wait_space(c, 0, ...)). */
			shm_writer_publish(&c->w);
			c->last_need = (uint32_t)need;
		}
		return bd->rc;
	}
	fb_builder_init(&bd->b, bd->at, need);
	return 0;
}

static int finish(rollout_client *c, struct build *bd, uint64_t request_id, uint64_t deadline_ns, int kind,
		  fb_ref_t act)
{
	struct fb_builder *b = &bd->b;
	rw_Request_start(b);
	rw_Request_add_request_id(b, request_id);
	rw_Request_add_deadline_ns(b, deadline_ns);
	rw_Request_add_action(b, (uint8_t)kind, act);
	fb_ref_t r = rw_Request_end(b);
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, DISPATCH_PLACEHOLDER);
	rw_Message_add_body(b, rw_Body_Request, r);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	if (bd->big) {
		if (n < 0 || (size_t)n > ROLLOUT_MAX_TRANSFER)
			return ROLLOUT_E_TOO_BIG; /* the buffer stays the spare */
		c->out.buf = bd->at;
		c->out.spare = NULL;
		c->out.len = (size_t)n;
		c->out.off = 0;
		c->out.request_id = request_id;
		int rc = push_pieces(c);
		return rc == -EAGAIN ? 0 : rc; /* the rest goes in at rollout_flush */
	}
	if (n < 0) {
		shm_writer_abort(&c->w);
		return ROLLOUT_E_TOO_BIG;
	}
	return shm_writer_commit(&c->w, (uint32_t)n);
}

static size_t slen(const char *s)
{
	return s ? strlen(s) + 8 : 0;
}

int rollout_open(rollout_client *c, uint64_t request_id, const char *profile, uint64_t deadline_ns)
{
	struct rollout_open_opts o = { .profile = profile };
	return rollout_open_ex(c, request_id, &o, deadline_ns);
}

int rollout_open_ex(rollout_client *c, uint64_t request_id, const struct rollout_open_opts *o,
		    uint64_t deadline_ns)
{
	if (!o)
		return -EINVAL;
	struct build bd;
	int rc = begin(c, &bd, 256 + slen(o->profile) + slen(o->snapshot) + slen(o->group));
	if (rc)
		return rc;
	struct fb_builder *b = &bd.b;
	fb_ref_t p = fb_create_string(b, o->profile ? o->profile : "default");
	fb_ref_t snap = o->snapshot ? fb_create_string(b, o->snapshot) : 0;
	fb_ref_t group = o->group ? fb_create_string(b, o->group) : 0;
	rw_Open_start(b);
	rw_Open_add_profile(b, p);
	if (snap)
		rw_Open_add_snapshot(b, snap);
	if (group)
		rw_Open_add_group(b, group);
	if (o->lease_ms)
		rw_Open_add_lease_ms(b, o->lease_ms);
	if (o->checkpoint_every)
		rw_Open_add_checkpoint_every(b, o->checkpoint_every);
	return finish(c, &bd, request_id, deadline_ns, rw_Action_Open, rw_Open_end(b));
}

int rollout_exec(rollout_client *c, uint64_t request_id, uint64_t sandbox, const struct rollout_exec *e,
		 uint64_t deadline_ns)
{
	if (!e || (!e->argv == !e->shell))
		return -EINVAL;
	size_t need = 512 + slen(e->shell) + slen(e->cwd) + e->stdin_len;
	size_t nargv = 0;
	for (; e->argv && e->argv[nargv]; nargv++)
		need += slen(e->argv[nargv]) + 4;
	for (size_t i = 0; i < e->env_len; i++)
		need += slen(e->env[i].name) + slen(e->env[i].value) + 32;
	struct build bd;
	int rc = begin(c, &bd, need);
	if (rc)
		return rc;
	struct fb_builder *b = &bd.b;
	fb_ref_t argv = 0, envv = 0;
	if (nargv) {
		fb_ref_t refs[256];
		if (nargv > 256) {
			shm_writer_abort(&c->w);
			return -E2BIG;
		}
		for (size_t i = 0; i < nargv; i++)
			refs[i] = fb_create_string(b, e->argv[i]);
		argv = fb_create_vec_ref(b, refs, nargv);
	}
	if (e->env_len) {
		fb_ref_t refs[128];
		if (e->env_len > 128) {
			shm_writer_abort(&c->w);
			return -E2BIG;
		}
		for (size_t i = 0; i < e->env_len; i++) {
			fb_ref_t k = fb_create_string(b, e->env[i].name),
				 v = fb_create_string(b, e->env[i].value);
			rw_EnvVar_start(b);
			rw_EnvVar_add_name(b, k);
			rw_EnvVar_add_value(b, v);
			refs[i] = rw_EnvVar_end(b);
		}
		envv = fb_create_vec_ref(b, refs, e->env_len);
	}
	fb_ref_t sh = e->shell ? fb_create_string(b, e->shell) : 0;
	fb_ref_t cwd = e->cwd ? fb_create_string(b, e->cwd) : 0;
	fb_ref_t in = e->stdin_len ? fb_create_vec_u8(b, e->stdin_data, e->stdin_len) : 0;
	rw_Exec_start(b);
	rw_Exec_add_sandbox(b, sandbox);
	rw_Exec_add_argv(b, argv);
	rw_Exec_add_shell(b, sh);
	rw_Exec_add_stdin(b, in);
	rw_Exec_add_env(b, envv);
	rw_Exec_add_cwd(b, cwd);
	rw_Exec_add_timeout_ms(b, e->timeout_ms);
	rw_Exec_add_output_cap(b, e->output_cap);
	rw_Exec_add_stream(b, (e->flags & ROLLOUT_EXEC_STREAM) != 0);
	return finish(c, &bd, request_id, deadline_ns, rw_Action_Exec, rw_Exec_end(b));
}

int rollout_put_file(rollout_client *c, uint64_t request_id, uint64_t sandbox, const char *path,
		     const void *data, size_t len, uint32_t mode)
{
	struct build bd;
	int rc = begin(c, &bd, 256 + slen(path) + len);
	if (rc)
		return rc;
	fb_ref_t p = fb_create_string(&bd.b, path ? path : "");
	fb_ref_t d = fb_create_vec_u8(&bd.b, data, len);
	rw_PutFile_start(&bd.b);
	rw_PutFile_add_sandbox(&bd.b, sandbox);
	rw_PutFile_add_path(&bd.b, p);
	rw_PutFile_add_data(&bd.b, d);
	rw_PutFile_add_mode(&bd.b, mode ? mode : 0644);
	return finish(c, &bd, request_id, 0, rw_Action_PutFile, rw_PutFile_end(&bd.b));
}

int rollout_get_file(rollout_client *c, uint64_t request_id, uint64_t sandbox, const char *path,
		     uint32_t max_bytes)
{
	struct build bd;
	int rc = begin(c, &bd, 256 + slen(path));
	if (rc)
		return rc;
	fb_ref_t p = fb_create_string(&bd.b, path ? path : "");
	rw_GetFile_start(&bd.b);
	rw_GetFile_add_sandbox(&bd.b, sandbox);
	rw_GetFile_add_path(&bd.b, p);
	rw_GetFile_add_max_bytes(&bd.b, max_bytes);
	return finish(c, &bd, request_id, 0, rw_Action_GetFile, rw_GetFile_end(&bd.b));
}

int rollout_close(rollout_client *c, uint64_t request_id, uint64_t sandbox)
{
	struct build bd;
	int rc = begin(c, &bd, 128);
	if (rc)
		return rc;
	rw_Close_start(&bd.b);
	rw_Close_add_sandbox(&bd.b, sandbox);
	return finish(c, &bd, request_id, 0, rw_Action_Close, rw_Close_end(&bd.b));
}

int rollout_signal(rollout_client *c, uint64_t request_id, uint64_t sandbox, uint64_t target_request_id,
		   int signo)
{
	if (signo <= 0 || signo > 64)
		return -EINVAL;
	struct build bd;
	int rc = begin(c, &bd, 128);
	if (rc)
		return rc;
	rw_Signal_start(&bd.b);
	rw_Signal_add_sandbox(&bd.b, sandbox);
	rw_Signal_add_target_request_id(&bd.b, target_request_id);
	rw_Signal_add_signal(&bd.b, signo);
	return finish(c, &bd, request_id, 0, rw_Action_Signal, rw_Signal_end(&bd.b));
}

int rollout_snapshot(rollout_client *c, uint64_t request_id, uint64_t sandbox, bool checkpoint)
{
	struct build bd;
	int rc = begin(c, &bd, 128);
	if (rc)
		return rc;
	rw_Snapshot_start(&bd.b);
	rw_Snapshot_add_sandbox(&bd.b, sandbox);
	rw_Snapshot_add_checkpoint(&bd.b, checkpoint);
	return finish(c, &bd, request_id, 0, rw_Action_Snapshot, rw_Snapshot_end(&bd.b));
}

int rollout_flush(rollout_client *c)
{
	if (c->out.buf) {
		int rc = push_all_pieces(c, -1);
		if (rc)
			return rc;
	}
	return shm_writer_publish(&c->w);
}

int rollout_wait_space(rollout_client *c, uint32_t len, int timeout_ms)
{
	if (c->out.buf) {
		int rc = push_all_pieces(c, timeout_ms);
		if (rc)
			return rc;
	}
	if (len == 0)
		len = c->last_need;
	return len ? shm_writer_wait(&c->w, len, timeout_ms) : -EINVAL;
}

/* Takes a piece of a big completion into c->in: 1 when the record is whole (in c->in.buf),
 * 0 when more pieces are to come, or ROLLOUT_E_PROTOCOL for a piece out of order. */
static int join_piece(rollout_client *c, const rw_Piece_t *p)
{
	const uint8_t *data;
	size_t n = rw_Piece_data(p, &data);
	size_t total = rw_Piece_total(p), off = rw_Piece_offset(p);
	if (off == 0) {
		if (!total || total > ROLLOUT_MAX_TRANSFER)
			return ROLLOUT_E_PROTOCOL;
		if (c->in.cap < total) {
			free(c->in.buf);
			c->in.cap = 0;
			if (!(c->in.buf = malloc(total)))
				return -ENOMEM;
			c->in.cap = total;
		}
		c->in.total = total;
		c->in.got = 0;
	}
	if (!c->in.buf || off != c->in.got || total != c->in.total || n > total - off)
		return ROLLOUT_E_PROTOCOL;
	memcpy(c->in.buf + off, data, n);
	c->in.got += n;
	return c->in.got == c->in.total;
}

int rollout_next(rollout_client *c, struct rollout_completion *out)
{
	for (;;) {
		if (c->have_cur) {
			shm_reader_release(&c->r);
			c->have_cur = false;
		}
		c->in.ready = false;
		const void *d;
		uint32_t len;
		int rc = shm_reader_peek(&c->r, &d, &len);
		if (rc == -EAGAIN)
			return 0;
		if (rc)
			return rc;
		c->have_cur = true;
		/* rolloutd writes only verified records, but a record is checked before it is read. */
		if (rw_Message_verify(d, len) != 0)
			return ROLLOUT_E_VERIFY;
		const rw_Piece_t *piece = rw_Message_body_as_Piece(rw_Message_root(d));
		if (piece) {
			rc = join_piece(c, piece);
			if (rc <= 0) {
				if (rc == 0)
					continue;
				return rc;
			}
			shm_reader_release(&c->r);
			c->have_cur = false;
			c->in.ready = true;
			c->in.got = 0; /* a piece not at offset 0 now starts nothing */
			d = c->in.buf;
			len = (uint32_t)c->in.total;
			if (rw_Message_verify(d, len) != 0)
				return ROLLOUT_E_VERIFY;
		}
		struct rw_completion env;
		if (rw_completion_read(d, &env))
			continue;
		const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(d));
		memset(out, 0, sizeof(*out));
		out->request_id = env.request_id;
		out->status = env.status;
		out->infra_failed = env.infra_failed;
		out->message = env.message;
		out->sandbox = env.sandbox;
		const rw_ExecResult_t *e = rw_Completion_result_as_ExecResult(k);
		if (e) {
			out->exit_code = rw_ExecResult_exit_code(e);
			out->signal = rw_ExecResult_signal(e);
			out->stdout_len = rw_ExecResult_stdout(e, &out->stdout_data);
			out->stderr_len = rw_ExecResult_stderr(e, &out->stderr_data);
			out->stdout_truncated = rw_ExecResult_stdout_truncated(e);
			out->stderr_truncated = rw_ExecResult_stderr_truncated(e);
			out->wall_us = rw_ExecResult_wall_us(e);
			out->cpu_us = rw_ExecResult_cpu_us(e);
			out->peak_memory_kib = rw_ExecResult_peak_memory_kib(e);
			out->stdout_offset = rw_ExecResult_stdout_offset(e);
			out->stderr_offset = rw_ExecResult_stderr_offset(e);
		}
		out->partial = env.partial;
		const rw_FileData_t *f = rw_Completion_result_as_FileData(k);
		if (f) {
			out->file_len = rw_FileData_data(f, &out->file_data);
			out->file_truncated = rw_FileData_truncated(f);
		}
		out->snapshot = env.snapshot;
		out->snapshot_bytes = env.snapshot_bytes;
		out->snapshot_files = env.snapshot_files;
		out->frozen_us = env.frozen_us;
		/* An empty id names nothing: NULL, so callers test one thing. */
		if (env.checkpoint && *env.checkpoint) {
			out->checkpoint = env.checkpoint;
			out->checkpoint_request_id = env.checkpoint_request_id;
		}
		return 1;
	}
}

int rollout_wait(rollout_client *c, int timeout_ms)
{
	int frc = rollout_flush(c);
	if (frc < 0)
		return frc;
	if (c->have_cur) {
		shm_reader_release(&c->r);
		c->have_cur = false;
	}
	return shm_reader_wait(&c->r, timeout_ms);
}

const char *rollout_status_name(int status)
{
	const char *n = rw_Status_name((uint16_t)status);
	return n ? n : "UNKNOWN";
}

unsigned rollout_version(void)
{
	return ROLLOUT_VERSION_HEX;
}

void rollout_release(rollout_client *c)
{
	if (c->have_cur) {
		shm_reader_release(&c->r);
		c->have_cur = false;
	}
	c->in.ready = false;
}

static int wait_one(rollout_client *c, uint64_t id, struct rollout_completion *out, int timeout_ms)
{
	shm_writer_publish(&c->w);
	for (;;) {
		int n = rollout_next(c, out);
		if (n < 0)
			return n;
		if (n == 1 && out->request_id == id && out->partial)
			continue; /* streamed output: the completion follows */
		if (n == 1)
			return out->request_id == id ? 0 : ROLLOUT_E_PROTOCOL;
		int rc = rollout_wait(c, timeout_ms);
		if (rc)
			return rc;
	}
}

static uint64_t next_sync(rollout_client *c)
{
	return UINT64_MAX - 1 - c->sync_id++;
}

int rollout_open_sync(rollout_client *c, const char *profile, struct rollout_completion *out, int timeout_ms)
{
	uint64_t id = next_sync(c);
	int rc;
	while ((rc = rollout_open(c, id, profile, 0)) == -EAGAIN)
		if ((rc = rollout_wait_space(c, 0, timeout_ms)))
			return rc;
	return rc ? rc : wait_one(c, id, out, timeout_ms);
}

int rollout_exec_sync(rollout_client *c, uint64_t sandbox, const struct rollout_exec *e,
		      struct rollout_completion *out, int timeout_ms)
{
	uint64_t id = next_sync(c);
	int rc;
	while ((rc = rollout_exec(c, id, sandbox, e, 0)) == -EAGAIN)
		if ((rc = rollout_wait_space(c, 0, timeout_ms)))
			return rc;
	return rc ? rc : wait_one(c, id, out, timeout_ms);
}

int rollout_close_sync(rollout_client *c, uint64_t sandbox, struct rollout_completion *out, int timeout_ms)
{
	uint64_t id = next_sync(c);
	int rc;
	while ((rc = rollout_close(c, id, sandbox)) == -EAGAIN)
		if ((rc = rollout_wait_space(c, 0, timeout_ms)))
			return rc;
	return rc ? rc : wait_one(c, id, out, timeout_ms);
}
