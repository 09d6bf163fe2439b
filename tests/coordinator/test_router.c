/* The router with fake pools and trainers: every request gets exactly one completion, and
 * each way a pool or a trainer can misbehave is refused or completed, never followed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "completion.h"
#include "router.h"
#include "test_actions.h"

#define MAXMSG          256
#define ROUTER_TEST_BIG 1100 /* a checkpoint id over the router's limit (1024) */

struct sent {
	int pool;
	uint8_t buf[1024] __attribute__((aligned(8)));
	size_t len;
};

struct got {
	struct rt_client *c;
	struct rw_completion k;
	char message[200];
	char checkpoint[64]; /* Completion.checkpoint, "" when absent */
	uint64_t checkpoint_rid;
	uint8_t result_type;
};

static struct fake {
	struct sent sent[MAXMSG];
	int nsent;
	struct got got[MAXMSG];
	int ngot;
	int send_rc[4]; /* what pool_send returns, per pool */
	int resets[4];
	int refused;
	bool stopping;
	int nstream;
	struct rt_client *last_stream;
	int ckpt_recorded, ckpt_given;
} F;

static int f_send(void *ctx, int pool, const void *msg, size_t len)
{
	(void)ctx;
	if (F.send_rc[pool])
		return F.send_rc[pool];
	assert_true(F.nsent < MAXMSG && len <= sizeof(F.sent[0].buf));
	F.sent[F.nsent].pool = pool;
	memcpy(F.sent[F.nsent].buf, msg, len);
	F.sent[F.nsent].len = len;
	F.nsent++;
	return 0;
}

static void f_reset(void *ctx, int pool)
{
	(void)ctx;
	F.resets[pool]++;
}

static void f_complete(void *ctx, struct rt_client *c, const void *msg, size_t len)
{
	(void)ctx;
	assert_true(F.ngot < MAXMSG);
	uint8_t copy[4096] __attribute__((aligned(8)));
	assert_true(len <= sizeof(copy));
	memcpy(copy, msg, len);
	assert_int_equal(rw_Message_verify(copy, len), 0);
	struct got *g = &F.got[F.ngot++];
	g->c = c;
	assert_int_equal(rw_completion_read(copy, &g->k), 0);
	snprintf(g->message, sizeof(g->message), "%s", g->k.message ? g->k.message : "");
	g->k.message = g->message;
	const rw_Completion_t *k = rw_Message_body_as_Completion(rw_Message_root(copy));
	const char *ck = rw_Completion_checkpoint(k);
	snprintf(g->checkpoint, sizeof(g->checkpoint), "%s", ck ? ck : "");
	g->checkpoint_rid = rw_Completion_checkpoint_request_id(k);
	g->result_type = rw_Completion_result_type(k);
}

static void f_request(void *ctx, int kind)
{
	(void)ctx;
	(void)kind;
}
static void f_completion(void *ctx, int kind, int status, uint64_t ns)
{
	(void)ctx;
	(void)kind;
	(void)status;
	(void)ns;
}
static void f_refused(void *ctx, const char *why)
{
	(void)ctx;
	(void)why;
	F.refused++;
}
static bool f_stopping(void *ctx)
{
	(void)ctx;
	return F.stopping;
}

static void f_stream(void *ctx, struct rt_client *c, const void *msg, size_t len)
{
	(void)ctx;
	(void)msg;
	(void)len;
	F.last_stream = c;
	F.nstream++;
}

static void f_checkpoint(void *ctx, int event)
{
	(void)ctx;
	if (event == ROUTER_CHECKPOINT_GIVEN)
		F.ckpt_given++;
	else
		F.ckpt_recorded++;
}

static const struct router_ops ops = { f_send,       f_reset,   f_complete, f_request,
				       f_completion, f_refused, f_stream,   f_checkpoint };

static struct router *R;
static struct rt_client A = { .name = "a" }, B = { .name = "b" };
static uint8_t msgbuf[4096] __attribute__((aligned(8)));

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
	struct router_cfg cfg = { .shard = 1, .npools = 2, .max_queue = 4, .stopping = f_stopping };
	return router_create(&R, &cfg, &ops, NULL);
}

static int teardown(void **state)
{
	(void)state;
	router_destroy(R);
	return 0;
}

/* ---- messages ---- */

enum { NO_PLACEHOLDER = 1, NEW_SCHEMA = 2 };

static size_t request(int kind, uint64_t rid, uint64_t sandbox, uint64_t deadline, int flags)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t act = test_action(&b, kind, sandbox, "default");
	rw_Request_start(&b);
	rw_Request_add_request_id(&b, rid);
	rw_Request_add_deadline_ns(&b, deadline);
	rw_Request_add_action(&b, (uint8_t)kind, act);
	fb_ref_t q = rw_Request_end(&b);
	rw_Message_start(&b);
	if (flags & NEW_SCHEMA)
		rw_Message_add_schema_version(&b, rw_SchemaVersion_Current + 1);
	if (!(flags & NO_PLACEHOLDER))
		rw_Message_add_dispatch_id(&b, UINT64_MAX);
	rw_Message_add_body(&b, rw_Body_Request, q);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 0);
	return (size_t)n;
}

static void hello(int pool, uint64_t boot, uint32_t credits, uint32_t free)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t name = fb_create_string(&b, "default");
	rw_ProfileCapacity_start(&b);
	rw_ProfileCapacity_add_profile(&b, name);
	rw_ProfileCapacity_add_total(&b, 100);
	rw_ProfileCapacity_add_free(&b, free);
	fb_ref_t pc = rw_ProfileCapacity_end(&b);
	fb_ref_t vec = fb_create_vec_ref(&b, &pc, 1);
	fb_ref_t ident = fb_create_string(&b, "pool\nts=forged level=error");
	rw_PoolHello_start(&b);
	rw_PoolHello_add_identity(&b, ident);
	rw_PoolHello_add_boot_id(&b, boot);
	rw_PoolHello_add_capacity(&b, vec);
	rw_PoolHello_add_max_inflight(&b, credits);
	fb_ref_t h = rw_PoolHello_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_PoolHello, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	router_pool_message(R, pool, msgbuf, (size_t)n, 1);
}

static void heartbeat(int pool, uint64_t boot)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	rw_Heartbeat_start(&b);
	rw_Heartbeat_add_seq(&b, 1);
	rw_Heartbeat_add_boot_id(&b, boot);
	fb_ref_t h = rw_Heartbeat_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Heartbeat, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	router_pool_message(R, pool, msgbuf, (size_t)n, 1);
}

/* The pool's answer to the dispatch it received as sent[i]. */
static void answer(int from_pool, int i, int status, uint8_t result, uint64_t sandbox)
{
	const rw_Message_t *m = rw_Message_root(F.sent[i].buf);
	const rw_Request_t *q = rw_Message_body_as_Request(m);
	struct rw_completion k = { .dispatch_id = rw_Message_dispatch_id(m),
				   .request_id = rw_Request_request_id(q),
				   .status = (uint16_t)status,
				   .result_type = result,
				   .sandbox = sandbox };
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	ssize_t n = rw_completion_build(&b, &k);
	assert_true(n > 0);
	router_pool_message(R, from_pool, msgbuf, (size_t)n, 2);
}

/* The pool's answer to sent[i] naming a checkpoint (ckpt NULL: none), with a Snapshotted
 * result when snap is set (the answer to a Snapshot), an empty ExecResult for an OK exec. */
static void answer_ckpt(int from_pool, int i, int status, const char *ckpt, uint64_t ckpt_rid,
			const char *snap)
{
	const rw_Message_t *m = rw_Message_root(F.sent[i].buf);
	const rw_Request_t *q = rw_Message_body_as_Request(m);
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t ck = ckpt ? fb_create_string(&b, ckpt) : 0, res = 0;
	if (snap) {
		fb_ref_t id = fb_create_string(&b, snap);
		rw_Snapshotted_start(&b);
		rw_Snapshotted_add_snapshot(&b, id);
		rw_Snapshotted_add_bytes(&b, 4096);
		rw_Snapshotted_add_files(&b, 3);
		rw_Snapshotted_add_frozen_us(&b, 250);
		res = rw_Snapshotted_end(&b);
	} else if (status == rw_Status_OK && rw_Request_action_type(q) == rw_Action_Exec) {
		rw_ExecResult_start(&b); /* an OK exec carries its result */
		res = rw_ExecResult_end(&b);
	}
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, rw_Request_request_id(q));
	rw_Completion_add_status(&b, (uint16_t)status);
	rw_Completion_add_infra_failed(&b, status == rw_Status_SANDBOX_LOST);
	if (ck) {
		rw_Completion_add_checkpoint(&b, ck);
		rw_Completion_add_checkpoint_request_id(&b, ckpt_rid);
	}
	if (res)
		rw_Completion_add_result(&b, snap ? rw_Result_Snapshotted : rw_Result_ExecResult, res);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, rw_Message_dispatch_id(m));
	rw_Message_add_body(&b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 0);
	router_pool_message(R, from_pool, msgbuf, (size_t)n, 2);
}

/* A Snapshot request (test_actions.h has no table for it). */
static size_t snapshot_request(uint64_t rid, uint64_t sandbox, bool checkpoint)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	rw_Snapshot_start(&b);
	rw_Snapshot_add_sandbox(&b, sandbox);
	rw_Snapshot_add_checkpoint(&b, checkpoint);
	fb_ref_t act = rw_Snapshot_end(&b);
	rw_Request_start(&b);
	rw_Request_add_request_id(&b, rid);
	rw_Request_add_action(&b, rw_Action_Snapshot, act);
	fb_ref_t q = rw_Request_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, UINT64_MAX);
	rw_Message_add_body(&b, rw_Body_Request, q);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 0);
	return (size_t)n;
}

/* A streamed-output record (partial completion) for the dispatch sent as sent[i]. */
static void partial(int from_pool, int i)
{
	const rw_Message_t *m = rw_Message_root(F.sent[i].buf);
	uint64_t dispatch = rw_Message_dispatch_id(m);
	uint64_t rid = rw_Request_request_id(rw_Message_body_as_Request(m));
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t out = fb_create_vec_u8(&b, "line\n", 5);
	rw_ExecResult_start(&b);
	rw_ExecResult_add_stdout(&b, out);
	fb_ref_t er = rw_ExecResult_end(&b);
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, rid);
	rw_Completion_add_partial(&b, true);
	rw_Completion_add_result(&b, rw_Result_ExecResult, er);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, dispatch);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 0);
	router_pool_message(R, from_pool, msgbuf, (size_t)n, 2);
}

static enum router_verdict submit(struct rt_client *c, size_t len, uint64_t now)
{
	return router_submit(R, c, msgbuf, len, now);
}

/* Opens a sandbox for c on pool 0 and returns its id. */
static uint64_t open_on_pool0(struct rt_client *c, uint64_t rid, uint64_t sandbox)
{
	int before = F.ngot;
	assert_int_equal(submit(c, request(rw_Action_Open, rid, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 0);
	answer(0, F.nsent - 1, rw_Status_OK, rw_Result_Opened, sandbox);
	assert_int_equal(F.ngot, before + 1);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_OK);
	return sandbox;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0xabc);
	assert_int_equal(A.sessions, 1);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	answer(0, F.nsent - 1, rw_Status_OK, rw_Result_ExecResult, 0);
	assert_int_equal(submit(&A, request(rw_Action_Close, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	answer(0, F.nsent - 1, rw_Status_OK, rw_Result_Closed, 0);
	assert_int_equal(F.ngot, 3);
	assert_int_equal(A.sessions, 0);
	assert_int_equal(A.inflight, 0);
	assert_int_equal(router_pool(R, 0)->credits, 16);
	assert_int_equal(F.refused, 0);
}

/* Streamed output passes to the trainer and leaves the exec in flight: its one completion
 * still follows. A partial record for an open, from another pool, or after the completion
 * is refused. A Signal goes to the sandbox's pool like any action on it. */
static void test_streamed_output_and_signal(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	hello(1, 8, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0xabc);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	int exec = F.nsent - 1;
	partial(0, exec);
	partial(0, exec);
	assert_int_equal(F.nstream, 2);
	assert_ptr_equal(F.last_stream, &A);
	assert_int_equal(F.ngot, 1); /* the open only */
	assert_int_equal(A.inflight, 1);
	partial(1, exec); /* another pool's word for our dispatch */
	assert_int_equal(F.nstream, 2);
	assert_int_equal(F.refused, 1);
	assert_int_equal(submit(&A, request(rw_Action_Signal, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 0);
	answer(0, F.nsent - 1, rw_Status_OK, 0, 0);
	answer(0, exec, rw_Status_OK, rw_Result_ExecResult, 0);
	assert_int_equal(F.ngot, 3);
	assert_int_equal(F.got[2].k.request_id, 2);
	assert_false(F.got[2].k.partial);
	assert_int_equal(A.inflight, 0);
	partial(0, exec); /* after the completion: the dispatch is gone */
	assert_int_equal(F.nstream, 2);
	assert_int_equal(F.refused, 2);
	assert_int_equal(submit(&A, request(rw_Action_Open, 4, 0, 0, 0), 1), ROUTER_TAKEN);
	partial(F.sent[F.nsent - 1].pool, F.nsent - 1); /* an open never streams */
	assert_int_equal(F.nstream, 2);
	assert_int_equal(F.refused, 3);
	assert_int_equal(A.inflight, 1);
}

/* Issue 10 #3: an OK open without its Opened result is refused, and the open completes
 * once, as INTERNAL with infra_failed (it used to crash on a NULL pointer). */
static void test_ok_open_without_sandbox(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	assert_int_equal(submit(&A, request(rw_Action_Open, 5, 0, 0, 0), 1), ROUTER_TAKEN);
	answer(0, 0, rw_Status_OK, 0, 0);
	assert_int_equal(F.ngot, 1);
	assert_int_equal(F.got[0].k.request_id, 5);
	assert_int_equal(F.got[0].k.status, rw_Status_INTERNAL);
	assert_true(F.got[0].k.infra_failed);
	assert_int_equal(F.refused, 1);
	assert_int_equal(A.sessions, 0);
	assert_int_equal(A.inflight, 0);
}

/* Issue 10 #4: an answer from a pool the dispatch was not sent to is refused. */
static void test_answer_from_other_pool(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	hello(1, 8, 16, 1);
	assert_int_equal(submit(&A, request(rw_Action_Open, 9, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[0].pool, 0);
	answer(1, 0, rw_Status_OK, rw_Result_Opened, 0x55);
	assert_int_equal(F.ngot, 0);
	assert_int_equal(F.refused, 1);
	answer(0, 0, rw_Status_OK, rw_Result_Opened, 0x66);
	assert_int_equal(F.ngot, 1);
	assert_int_equal(F.got[0].k.sandbox, 0x66);
	answer(0, 0, rw_Status_OK, rw_Result_Opened, 0x66); /* a duplicate */
	assert_int_equal(F.ngot, 1);
	assert_int_equal(F.refused, 2);
}

/* Issue 10 #5: a close that has to wait keeps its session, so the retry is dispatched
 * (it used to answer NOT_FOUND and leak the sandbox). */
static void test_close_retried(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x77);
	F.send_rc[0] = -EAGAIN;
	size_t len = request(rw_Action_Close, 2, sb, 0, 0);
	assert_int_equal(submit(&A, len, 1), ROUTER_WAIT);
	F.send_rc[0] = 0;
	int sent = F.nsent;
	assert_int_equal(submit(&A, request(rw_Action_Close, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.nsent, sent + 1);
	assert_int_equal(F.ngot, 1); /* no NOT_FOUND */
	assert_int_equal(A.sessions, 1);
	/* A step after the close is refused while the close is in flight. */
	assert_int_equal(submit(&A, request(rw_Action_Exec, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[1].k.status, rw_Status_NOT_FOUND);
	answer(0, F.nsent - 1, rw_Status_OK, rw_Result_Closed, 0);
	assert_int_equal(A.sessions, 0);
	assert_int_equal(F.got[2].k.request_id, 2);
}

/* Issue 10 #6: records that cannot be dispatched still complete, once. */
static void test_bad_records_complete(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint8_t junk[64] __attribute__((aligned(8)));
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(router_submit(R, &A, junk, sizeof(junk), 1), ROUTER_TAKEN);
	assert_int_equal(F.ngot, 1);
	assert_int_equal(F.got[0].k.status, rw_Status_BAD_REQUEST);
	assert_int_equal(F.got[0].k.request_id, 0);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 41, 5, 0, NEW_SCHEMA), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[1].k.request_id, 41);
	assert_int_equal(F.got[1].k.status, rw_Status_BAD_REQUEST);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 42, 5, 0, NO_PLACEHOLDER), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[2].k.request_id, 42);
	assert_int_equal(F.got[2].k.status, rw_Status_BAD_REQUEST);
	/* A Completion written into the submission ring is not a request. */
	struct rw_completion k = { .request_id = 43 };
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	ssize_t n = rw_completion_build(&b, &k);
	assert_int_equal(submit(&A, (size_t)n, 1), ROUTER_TAKEN);
	assert_int_equal(F.got[3].k.status, rw_Status_BAD_REQUEST);
	assert_int_equal(F.ngot, 4);
	assert_int_equal(F.nsent, 0);
	assert_true(F.refused >= 2);
}

/* Issue 10 #6: a failed send leaves no dispatch behind and takes no credit. */
static void test_send_failure_leaves_nothing(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	F.send_rc[0] = -EAGAIN;
	assert_int_equal(submit(&A, request(rw_Action_Open, 1, 0, 0, 0), 1), ROUTER_WAIT);
	struct router_stats st;
	router_stats(R, &st);
	assert_int_equal(st.dispatches, 0);
	assert_int_equal(router_pool(R, 0)->credits, 16);
	assert_int_equal(A.inflight, 0);
	assert_int_equal(F.ngot, 0);
}

/* Issue 10 #16: a pool restarted within pool_timeout_ms is noticed by the boot id in its
 * heartbeat; what was in flight completes SANDBOX_LOST once and its credits come back. */
static void test_restart_between_heartbeats(void **state)
{
	(void)state;
	hello(0, 7, 4, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x99);
	for (uint64_t i = 0; i < 3; i++)
		assert_int_equal(submit(&A, request(rw_Action_Exec, 10 + i, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(router_pool(R, 0)->credits, 1);
	heartbeat(0, 7);
	assert_int_equal(F.ngot, 1);
	heartbeat(0, 8);
	assert_int_equal(F.ngot, 4);
	for (int i = 1; i < 4; i++) {
		assert_int_equal(F.got[i].k.status, rw_Status_SANDBOX_LOST);
		assert_true(F.got[i].k.infra_failed);
	}
	assert_int_equal(F.resets[0], 1);
	assert_false(router_pool(R, 0)->up);
	assert_int_equal(A.sessions, 0);
	assert_int_equal(A.inflight, 0);
	hello(0, 8, 4, 10);
	assert_int_equal(router_pool(R, 0)->credits, 4);
	/* Late answers of the old pool's dispatches are refused. */
	answer(0, F.nsent - 1, rw_Status_OK, rw_Result_ExecResult, 0);
	assert_int_equal(F.ngot, 4);
}

/* A deadline completes TIMEOUT once; the credit stays taken until the pool answers, and
 * a sandbox that an expired open still got is closed again. */
static void test_deadline(void **state)
{
	(void)state;
	hello(0, 7, 4, 10);
	assert_int_equal(submit(&A, request(rw_Action_Open, 1, 0, 100, 0), 50), ROUTER_TAKEN);
	router_tick(R, 99);
	assert_int_equal(F.ngot, 0);
	router_tick(R, 101);
	assert_int_equal(F.ngot, 1);
	assert_int_equal(F.got[0].k.status, rw_Status_TIMEOUT);
	assert_int_equal(A.inflight, 0);
	assert_int_equal(F.nsent, 2); /* the open and its Cancel */
	assert_int_equal(router_pool(R, 0)->credits, 3);
	answer(0, 0, rw_Status_OK, rw_Result_Opened, 0x31);
	assert_int_equal(F.ngot, 1); /* nothing more for the trainer */
	router_tick(R, 102);
	assert_int_equal(F.nsent, 3);
	const rw_Request_t *q = rw_Message_body_as_Request(rw_Message_root(F.sent[2].buf));
	assert_int_equal(rw_Request_action_type(q), rw_Action_Close);
	assert_int_equal(rw_Close_sandbox(rw_Request_action_as_Close(q)), 0x31);
	assert_int_equal(A.sessions, 0);
}

/* A trainer that leaves: its sandboxes are closed at their pools, answers go nowhere. */
static void test_client_gone(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x41);
	open_on_pool0(&B, 1, 0x42);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	int exec_i = F.nsent - 1;
	router_client_gone(R, &A);
	const rw_Request_t *q = rw_Message_body_as_Request(rw_Message_root(F.sent[F.nsent - 1].buf));
	assert_int_equal(rw_Request_action_type(q), rw_Action_Close);
	assert_int_equal(rw_Close_sandbox(rw_Request_action_as_Close(q)), 0x41);
	int got = F.ngot;
	answer(0, exec_i, rw_Status_OK, rw_Result_ExecResult, 0);
	assert_int_equal(F.ngot, got);
	struct router_stats st;
	router_stats(R, &st);
	assert_int_equal(st.sessions, 1); /* B's */
}

/* Opens wait for capacity in order, bounded; a stopping router completes them. */
static void test_open_queue(void **state)
{
	(void)state;
	hello(0, 7, 1, 10);
	assert_int_equal(submit(&A, request(rw_Action_Open, 1, 0, 0, 0), 1), ROUTER_TAKEN);
	for (uint64_t i = 2; i < 6; i++)
		assert_int_equal(submit(&A, request(rw_Action_Open, i, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(submit(&A, request(rw_Action_Open, 6, 0, 0, 0), 1), ROUTER_WAIT); /* max_queue 4 */
	assert_int_equal(F.nsent, 1);
	answer(0, 0, rw_Status_OK, rw_Result_Opened, 0x10);
	router_serve_waiting(R, 2);
	assert_int_equal(F.nsent, 2);
	F.stopping = true;
	router_tick(R, 3);
	assert_int_equal(F.ngot, 4); /* the open answered, three SHUTTING_DOWN */
	for (int i = 1; i < 4; i++)
		assert_int_equal(F.got[i].k.status, rw_Status_SHUTTING_DOWN);
	assert_int_equal(submit(&A, request(rw_Action_Open, 7, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[4].k.status, rw_Status_SHUTTING_DOWN);
}

/* Pool down: every dispatch completes SANDBOX_LOST exactly once. */
static void test_pool_down(void **state)
{
	(void)state;
	hello(0, 7, 64, 10);
	hello(1, 8, 64, 5);
	uint64_t sb = open_on_pool0(&A, 1, 0x20);
	for (uint64_t i = 0; i < 20; i++)
		assert_int_equal(submit(&A, request(rw_Action_Exec, 100 + i, sb, 0, 0), 1), ROUTER_TAKEN);
	router_pool_down(R, 0, "test");
	router_pool_down(R, 0, "test again");
	assert_int_equal(F.ngot, 21);
	for (int i = 1; i < 21; i++)
		assert_int_equal(F.got[i].k.status, rw_Status_SANDBOX_LOST);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 200, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[21].k.status, rw_Status_NOT_FOUND);
	/* New opens go to the pool that is up. */
	assert_int_equal(submit(&A, request(rw_Action_Open, 300, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 1);
}

/* A pool whose address left its dns: name gets no new opens; its sessions go on there; a
 * pool added while running takes opens. */
static void test_retired_and_added_pools(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x61);
	router_retire_pool(R, 0, true);
	assert_int_equal(submit(&A, request(rw_Action_Open, 2, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_UNAVAILABLE); /* no other pool yet */
	int i = router_add_pool(R);
	assert_int_equal(i, 2);
	hello(2, 9, 16, 10);
	assert_int_equal(submit(&A, request(rw_Action_Open, 3, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 2);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 4, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 0); /* its session stays where it is */
	router_retire_pool(R, 0, false);
	hello(2, 9, 16, 0);
	assert_int_equal(submit(&A, request(rw_Action_Open, 5, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 0);
}

/* ---- checkpoints (issue 11) ---- */

/* A checkpoint seen on a completion is on the SANDBOX_LOST of a later request when the
 * pool goes down; a newer one replaces an older one; the trainer's next step on the lost
 * sandbox learns it too, a Close ends that, and the pool's other requests are unchanged. */
static void test_checkpoint_on_pool_down(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x70);
	uint64_t other = open_on_pool0(&A, 2, 0x71);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	answer_ckpt(0, F.nsent - 1, rw_Status_OK, "ck-3", 3, NULL);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "ck-3"); /* passed on as the pool sent it */
	assert_int_equal(submit(&A, request(rw_Action_Exec, 4, sb, 0, 0), 1), ROUTER_TAKEN);
	answer_ckpt(0, F.nsent - 1, rw_Status_OK, "ck-4", 4, NULL);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 5, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 6, other, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(submit(&A, request(rw_Action_Open, 7, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.ckpt_recorded, 2);
	int before = F.ngot;
	router_pool_down(R, 0, "test");
	assert_int_equal(F.ngot, before + 3);
	for (int i = before; i < F.ngot; i++) {
		struct got *g = &F.got[i];
		assert_int_equal(g->k.status, rw_Status_SANDBOX_LOST);
		assert_true(g->k.infra_failed);
		if (g->k.request_id == 5) {
			assert_string_equal(g->checkpoint, "ck-4");
			assert_int_equal(g->checkpoint_rid, 4);
		} else {
			assert_string_equal(g->checkpoint, ""); /* no checkpoint: other, and the open */
		}
	}
	assert_int_equal(F.ckpt_given, 1);
	struct router_stats st;
	router_stats(R, &st);
	assert_int_equal(st.sessions, 0);
	assert_int_equal(st.lost, 1); /* sb, kept for its checkpoint; other is gone */
	assert_int_equal(A.sessions, 0);
	/* A step after the loss: SANDBOX_LOST with the checkpoint, not NOT_FOUND. */
	assert_int_equal(submit(&A, request(rw_Action_Exec, 8, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_SANDBOX_LOST);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "ck-4");
	assert_int_equal(submit(&A, request(rw_Action_Exec, 9, other, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_NOT_FOUND);
	assert_int_equal(submit(&B, request(rw_Action_Exec, 10, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_NOT_FOUND); /* not B's */
	int sent = F.nsent;
	assert_int_equal(submit(&A, request(rw_Action_Close, 11, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_OK);
	assert_int_equal(F.nsent, sent); /* nothing to send: the pool lost it */
	router_stats(R, &st);
	assert_int_equal(st.lost, 0);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 12, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_NOT_FOUND);
	assert_int_equal(A.inflight, 0);
	assert_int_equal(F.refused, 0);
}

/* Snapshot goes to the sandbox's pool; its Snapshotted answer with checkpoint=true records
 * the checkpoint, which a restart of that pool (a new boot id) hands out. */
static void test_snapshot_routed(void **state)
{
	(void)state;
	hello(0, 7, 16, 1);
	hello(1, 8, 16, 10);
	assert_int_equal(submit(&A, request(rw_Action_Open, 1, 0, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.sent[F.nsent - 1].pool, 1);
	answer(1, F.nsent - 1, rw_Status_OK, rw_Result_Opened, 0x80);
	assert_int_equal(submit(&A, snapshot_request(2, 0x80, true), 1), ROUTER_TAKEN);
	int snap = F.nsent - 1;
	assert_int_equal(F.sent[snap].pool, 1);
	const rw_Request_t *q = rw_Message_body_as_Request(rw_Message_root(F.sent[snap].buf));
	assert_int_equal(rw_Request_action_type(q), rw_Action_Snapshot);
	assert_int_equal(rw_Snapshot_sandbox(rw_Request_action_as_Snapshot(q)), 0x80);
	assert_true(rw_Snapshot_checkpoint(rw_Request_action_as_Snapshot(q)));
	assert_int_equal(A.inflight, 1);
	answer_ckpt(1, snap, rw_Status_OK, "snap-2", 2, "snap-2");
	assert_int_equal(F.got[F.ngot - 1].k.request_id, 2);
	assert_int_equal(F.got[F.ngot - 1].result_type, rw_Result_Snapshotted);
	assert_int_equal(A.inflight, 0);
	/* A plain snapshot (no checkpoint) leaves the checkpoint as it is. */
	assert_int_equal(submit(&A, snapshot_request(3, 0x80, false), 1), ROUTER_TAKEN);
	answer_ckpt(1, F.nsent - 1, rw_Status_OK, NULL, 0, "snap-3");
	/* Snapshot of an unknown sandbox: NOT_FOUND, never sent. */
	int sent = F.nsent;
	assert_int_equal(submit(&A, snapshot_request(4, 0x81, true), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_NOT_FOUND);
	assert_int_equal(F.nsent, sent);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 5, 0x80, 0, 0), 1), ROUTER_TAKEN);
	heartbeat(1, 9); /* pool 1 restarted */
	assert_int_equal(F.got[F.ngot - 1].k.request_id, 5);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_SANDBOX_LOST);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "snap-2");
	assert_int_equal(F.got[F.ngot - 1].checkpoint_rid, 2);
}

/* A SANDBOX_LOST from the pool itself (its lease, its sandbox died) gets rolloutd's
 * checkpoint when it names none; one that names its own passes as it is and is recorded.
 * An over-long checkpoint id is refused and the one before kept. */
static void test_pool_lost_gets_checkpoint(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x90);
	char big[ROUTER_TEST_BIG];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	answer_ckpt(0, F.nsent - 1, rw_Status_OK, "ck-2", 2, NULL);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	answer_ckpt(0, F.nsent - 1, rw_Status_OK, big, 3, NULL);
	assert_int_equal(F.refused, 1);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 4, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 5, sb, 0, 0), 1), ROUTER_TAKEN);
	answer(0, F.nsent - 2, rw_Status_SANDBOX_LOST, 0, 0);
	struct got *g = &F.got[F.ngot - 1];
	assert_int_equal(g->k.request_id, 4);
	assert_int_equal(g->k.status, rw_Status_SANDBOX_LOST);
	assert_string_equal(g->checkpoint, "ck-2");
	assert_int_equal(g->checkpoint_rid, 2);
	/* The pool's answer to the step queued behind names its own (newer) checkpoint. */
	answer_ckpt(0, F.nsent - 1, rw_Status_SANDBOX_LOST, "pool-ck", 5, NULL);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "pool-ck");
	/* The session is lost: the next step learns the newest checkpoint without going to the
	 * pool. */
	int sent = F.nsent;
	assert_int_equal(submit(&A, request(rw_Action_Exec, 6, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.nsent, sent);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "pool-ck");
	assert_int_equal(F.got[F.ngot - 1].checkpoint_rid, 5);
	assert_int_equal(F.ckpt_given, 3);
	/* A trainer leaving drops its lost sessions (no Close is sent for them). */
	router_client_gone(R, &A);
	assert_int_equal(F.nsent, sent);
	struct router_stats st;
	router_stats(R, &st);
	assert_int_equal(st.lost + st.sessions, 0);
}

/* A sandbox lost while its Close is in flight is not kept for its checkpoint: the Close
 * completes SANDBOX_LOST with it, and nobody will ask again. */
static void test_lost_while_closing(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x97);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	answer_ckpt(0, F.nsent - 1, rw_Status_OK, "ck-2", 2, NULL);
	assert_int_equal(submit(&A, request(rw_Action_Close, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	router_pool_down(R, 0, "test");
	assert_int_equal(F.got[F.ngot - 1].k.request_id, 3);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_SANDBOX_LOST);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "ck-2");
	struct router_stats st;
	router_stats(R, &st);
	assert_int_equal(st.lost + st.sessions, 0);
	assert_int_equal(A.sessions, 0);
}

/* A SANDBOX_LOST without a checkpoint anywhere is passed on untouched and forgets the
 * session, as before checkpoints existed. */
static void test_lost_without_checkpoint(void **state)
{
	(void)state;
	hello(0, 7, 16, 10);
	uint64_t sb = open_on_pool0(&A, 1, 0x95);
	assert_int_equal(submit(&A, request(rw_Action_Exec, 2, sb, 0, 0), 1), ROUTER_TAKEN);
	answer(0, F.nsent - 1, rw_Status_SANDBOX_LOST, 0, 0);
	assert_string_equal(F.got[F.ngot - 1].checkpoint, "");
	assert_int_equal(submit(&A, request(rw_Action_Exec, 3, sb, 0, 0), 1), ROUTER_TAKEN);
	assert_int_equal(F.got[F.ngot - 1].k.status, rw_Status_NOT_FOUND);
	assert_int_equal(F.ckpt_given, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ok_open_without_sandbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_output_and_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_from_other_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records_complete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_between_heartbeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retired_and_added_pools, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_on_pool_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_routed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_lost_gets_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_while_closing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_without_checkpoint, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
