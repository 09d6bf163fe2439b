/* Actions on a sandbox (see action.h). */
#include "action.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boxes.h"
#include "completion.h"
#include "env.h"
#include "peer.h"
#include "proto.h"
#include "util.h"

void act_signal(struct pool *p, struct box *b, struct job *j, const uint8_t *raw, size_t len)
{
	const rw_Signal_t *s = rw_Request_action_as_Signal(rw_Message_body_as_Request(rw_Message_root(raw)));
	uint64_t target = rw_Signal_target_request_id(s);
	int sig = rw_Signal_signal(s);
	if (sig <= 0 || sig > 64 || len > 4096) {
		/* init takes control frames of 4 KiB at most while a command runs */
		proto_job_done(p, j, rw_Status_BAD_REQUEST, false,
			       len > 4096 ? "signal request over 4 KiB" : "no such signal");
		return;
	}
	struct job *cur = b->cur;
	if (cur && cur->kind == rw_Action_Exec && cur->peer == j->peer &&
	    (!target || cur->request_id == target)) {
		/* init reads it between its polls; if the command ends first, init drops it. */
		int rc = frame_send(&b->io, raw, len);
		if (rc == 1 && loop_mod(p->loop, b->s.fd, EPOLLIN | EPOLLOUT) < 0)
			rc = -EIO;
		proto_job_done(p, j, rc < 0 ? rw_Status_INTERNAL : rw_Status_OK, rc < 0,
			       rc < 0 ? "cannot reach the sandbox" : NULL);
		return;
	}
	struct job *prev = NULL;
	for (struct job *q = b->qhead; target && q; prev = q, q = q->next) {
		if (q->request_id != target || q->peer != j->peer || q->kind != rw_Action_Exec)
			continue;
		/* Not started yet: it never runs. */
		if (prev)
			prev->next = q->next;
		else
			b->qhead = q->next;
		if (b->qtail == q)
			b->qtail = prev;
		proto_job_done(p, q, rw_Status_CANCELLED, false, "cancelled before it started");
		proto_job_done(p, j, rw_Status_OK, false, NULL);
		return;
	}
	proto_job_done(p, j, rw_Status_NOT_FOUND, false, "no such command running or queued");
}

void act_enqueue(struct pool *p, struct box *b, struct job *j)
{
	j->next = NULL;
	if (b->qtail)
		b->qtail->next = j;
	else
		b->qhead = j;
	b->qtail = j;
	act_dispatch_next(p, b);
}

void act_dispatch_next(struct pool *p, struct box *b)
{
	struct profile_state *ps = &p->prof[b->profile];
	while (!b->cur && b->qhead) {
		struct job *j = b->qhead;
		b->qhead = j->next;
		if (!b->qhead)
			b->qtail = NULL;
		j->next = NULL;
		if (ps->sp.type == SBX_NOOP) {
			/* The benchmark aid: answers without running anything. */
			proto_job_done(p, j, rw_Status_OK, false, NULL);
			continue;
		}
		if (j->kind == rw_Action_Snapshot) {
			free(j->msg);
			j->msg = NULL;
			env_snapshot(p, b, j); /* b->cur until it is taken */
			continue;
		}
		/* The frame takes the request's bytes over (no copy, even for a big put). */
		int rc = frame_send_owned(&b->io, j->msg, j->len);
		j->msg = NULL;
		if (rc == -EMSGSIZE) {
			proto_job_done(p, j, rw_Status_BAD_REQUEST, false,
				       "request larger than a sandbox accepts");
			continue;
		}
		b->cur = j;
		j->started = rollout__now_ns();
		p->inflight++;
		uint32_t t = j->timeout_ms ? j->timeout_ms : ps->sp.timeout_ms;
		if (t > ps->sp.max_timeout_ms)
			t = ps->sp.max_timeout_ms;
		b->deadline = j->started + ROLLOUT_MS((uint64_t)t + POOL_BACKSTOP_MS);
		if (rc < 0) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
				 "sandbox stopped reading");
			return;
		}
		if (rc == 1 && loop_mod(p->loop, b->s.fd, EPOLLIN | EPOLLOUT) < 0) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
				 "cannot watch the sandbox");
			return;
		}
	}
}

size_t act_rebuild(struct pool *p, const uint8_t *msg, int status, const char *message,
		   const char *checkpoint, uint64_t checkpoint_rid)
{
	const rw_Message_t *m = rw_Message_root(msg);
	const rw_Completion_t *c = rw_Message_body_as_Completion(m);
	const rw_ExecResult_t *er = rw_Completion_result_as_ExecResult(c);
	const uint8_t *so = NULL, *se = NULL;
	size_t nso = er ? rw_ExecResult_stdout(er, &so) : 0, nse = er ? rw_ExecResult_stderr(er, &se) : 0;
	if (!message)
		message = rw_Completion_message(c);
	struct fb_builder *b = pool__builder(p, 4096 + nso + nse + (message ? strlen(message) : 0));
	if (!b)
		return 0;
	fb_ref_t r = 0;
	if (er) {
		fb_ref_t vso = fb_create_vec_u8(b, so, nso), vse = fb_create_vec_u8(b, se, nse);
		rw_ExecResult_start(b);
		rw_ExecResult_add_exit_code(b, rw_ExecResult_exit_code(er));
		rw_ExecResult_add_signal(b, rw_ExecResult_signal(er));
		rw_ExecResult_add_stdout_truncated(b, rw_ExecResult_stdout_truncated(er));
		rw_ExecResult_add_stderr_truncated(b, rw_ExecResult_stderr_truncated(er));
		rw_ExecResult_add_wall_us(b, rw_ExecResult_wall_us(er));
		rw_ExecResult_add_cpu_us(b, rw_ExecResult_cpu_us(er));
		rw_ExecResult_add_peak_memory_kib(b, rw_ExecResult_peak_memory_kib(er));
		rw_ExecResult_add_stdout(b, vso);
		rw_ExecResult_add_stderr(b, vse);
		r = rw_ExecResult_end(b);
	}
	fb_ref_t text = message ? fb_create_string(b, message) : 0;
	fb_ref_t ck = checkpoint ? fb_create_string(b, checkpoint) : 0;
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, rw_Completion_request_id(c));
	rw_Completion_add_status(b, status >= 0 ? (uint16_t)status : rw_Completion_status(c));
	rw_Completion_add_infra_failed(b, rw_Completion_infra_failed(c));
	if (text)
		rw_Completion_add_message(b, text);
	if (r)
		rw_Completion_add_result(b, rw_Result_ExecResult, r);
	if (ck) {
		rw_Completion_add_checkpoint(b, ck);
		rw_Completion_add_checkpoint_request_id(b, checkpoint_rid);
	}
	fb_ref_t cc = rw_Completion_end(b);
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, rw_Message_dispatch_id(m));
	rw_Message_add_body(b, rw_Body_Completion, cc);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	return n < 0 ? 0 : (size_t)n;
}

/* One answer from init. Returns 1 when the sandbox was killed (b is gone). */
static int on_frame(void *arg, const uint8_t *msg, size_t len)
{
	struct box *b = arg;
	struct pool *p = b->pool;
	struct job *j = b->cur;
	if (!j || rw_Message_verify(msg, len) != 0 || !rw_completion_fits(msg, j->kind)) {
		pool_metrics_refused(p->m);
		box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
			 "sandbox init sent a malformed answer");
		return 1;
	}
	const rw_Message_t *m = rw_Message_root(msg);
	if (rw_Message_dispatch_id(m) != j->dispatch) {
		pool_metrics_refused(p->m);
		box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
			 "sandbox init answered the wrong dispatch");
		return 1;
	}
	if (rw_Completion_partial(rw_Message_body_as_Completion(m))) {
		/* Streamed output of the running exec: passed on, never cached; the completion
		 * that follows holds all of it, so a chunk that cannot go now is dropped. */
		if (j->kind != rw_Action_Exec ||
		    !rw_Completion_result_as_ExecResult(rw_Message_body_as_Completion(m))) {
			pool_metrics_refused(p->m);
			box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
				 "sandbox init streamed output for an action that is not an exec");
			return 1;
		}
		pool_metrics_stream_chunk(p->m, j->peer->nout == 0 && peer_send(p, j->peer, msg, len) == 0);
		return 0;
	}
	int status = rw_Completion_status(rw_Message_body_as_Completion(m));
	if (j->kind == rw_Action_Exec && p->rt.cgroups) {
		uint64_t oom = cg_oom_kills(&p->rt.cg, b->s.cgname);
		if (oom > b->oom_seen) {
			b->oom_seen = oom;
			/* The cgroup says the memory limit killed a process during this exec. */
			size_t n = act_rebuild(p, msg, rw_Status_MEMORY_LIMIT,
					       "killed at the sandbox memory limit", NULL, 0);
			if (n) {
				msg = p->build;
				len = n;
				status = rw_Status_MEMORY_LIMIT;
			}
		}
	}
	uint64_t now = rollout__now_ns();
	pool_metrics_completion(p->m, status);
	if (j->kind == rw_Action_Exec)
		pool_metrics_exec_ns(p->m, now - j->started);
	uint64_t id = b->s.id;
	b->cur = NULL;
	b->deadline = 0;
	p->inflight--;
	if (status == rw_Status_OK && env_checkpoint_due(p, b, j, msg, len))
		return 0; /* the answer goes with its checkpoint */
	peer_answer(p, j->peer, j->dispatch, msg, len);
	proto_job_free(p, j);
	act_dispatch_next(p, b);
	/* dispatch_next may have killed b (its socket failed). */
	return box_find(p, id) == b ? 0 : 1;
}

void act_on_io(void *arg, uint32_t events)
{
	struct box *b = arg;
	struct pool *p = b->pool;
	uint64_t id = b->s.id;
	if (events & EPOLLOUT) {
		int rc = frame_flush(&b->io);
		if (rc < 0) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
				 "sandbox stopped reading");
			return;
		}
		if (rc == 0 && loop_mod(p->loop, b->s.fd, EPOLLIN) < 0) {
			box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
				 "cannot watch the sandbox");
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	int rc = frame_receive(&b->io, on_frame, b);
	if (rc == 1 || rc == 0 || box_find(p, id) != b)
		return;
	box_kill(p, b, rw_Status_SANDBOX_LOST, rw_Status_SANDBOX_LOST, true,
		 rc == -EPIPE     ? "sandbox init exited"
		 : rc == -EBADMSG ? "sandbox init sent a bad frame"
				  : "sandbox socket error");
}
