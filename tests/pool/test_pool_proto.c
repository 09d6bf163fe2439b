/* The protocol and leases (pool/proto.c, peer.c, boxes.c) without root, sockets to
 * sandboxes or a zygote: a pool state with noop profiles, a real ROUTER on inproc, and
 * messages fed to proto_on_message as if they came from routing ids. Checks hello and
 * heartbeat answers, open/exec/close, duplicate dispatches, NO_CAPACITY, cancel, lease
 * expiry with a fake clock, answers kept for an unreachable peer and delivered when it
 * is heard from (issue 10 #7), and a peer table that empties (#21). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "boxes.h"
#include "log.h"
#include "peer.h"
#include "pool_int.h"
#include "proto.h"
#include "util.h"

static struct pool P;
static struct pool_cfg cfg;
static uint8_t out[65536] __attribute__((aligned(8)));

static void pool_up(uint32_t max)
{
	memset(&P, 0, sizeof(P));
	memset(&cfg, 0, sizeof(cfg));
	cfg.identity = "unit-pool";
	cfg.lease_ms = 10000;
	cfg.max_inflight = 64;
	cfg.result_cache_s = 60;
	cfg.create_timeout_ms = 1000;
	P.cfg = &cfg;
	P.zy.fd = -1;
	P.nprof = 1;
	P.prof = calloc(1, sizeof(*P.prof));
	P.prof[0].sp.name = "noop";
	P.prof[0].sp.type = SBX_NOOP;
	P.prof[0].sp.max = max;
	acache_init(&P.cache, 60 * 1000000000ull, 1u << 20, peer_release, &P);
	P.zctx = zmq_ctx_new();
	P.router = zmq_socket(P.zctx, ZMQ_ROUTER);
	int one = 1;
	assert_int_equal(zmq_setsockopt(P.router, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)), 0);
	assert_int_equal(zmq_setsockopt(P.router, ZMQ_ROUTER_HANDOVER, &one, sizeof(one)), 0);
	assert_int_equal(zmq_bind(P.router, "inproc://pool"), 0);
}

static void pool_down(void)
{
	box_kill_all(&P, rw_Status_SHUTTING_DOWN, "test over");
	for (struct job *j = P.prof[0].waiting_head, *n; j; j = n) {
		n = j->next;
		proto_job_free(&P, j);
	}
	acache_fini(&P.cache);
	peer_free_all(&P);
	zmq_close(P.router);
	zmq_ctx_term(P.zctx);
	free(P.prof);
	free(P.build);
}

/* A DEALER with the routing id the test feeds messages under. */
static void *dealer(const char *rid)
{
	void *s = zmq_socket(P.zctx, ZMQ_DEALER);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
	assert_int_equal(zmq_connect(s, "inproc://pool"), 0);
	/* inproc connects at once, but the ROUTER learns the id from a first message. */
	assert_int_equal(zmq_send(s, "", 0, 0), 0);
	zmq_msg_t id, body;
	zmq_msg_init(&id);
	zmq_msg_init(&body);
	assert_true(zmq_msg_recv(&id, P.router, 0) >= 0);
	assert_true(zmq_msg_recv(&body, P.router, 0) >= 0);
	zmq_msg_close(&id);
	zmq_msg_close(&body);
	return s;
}

/* Next message to the dealer: its body type, with *m pointing at it (valid until the
 * next call); -EAGAIN when none came within 200 ms. */
static int next(void *s, const rw_Message_t **m)
{
	zmq_pollitem_t it = { .socket = s, .events = ZMQ_POLLIN };
	if (zmq_poll(&it, 1, 200) <= 0)
		return -EAGAIN;
	int n = zmq_recv(s, out, sizeof(out), 0);
	assert_true(n > 0);
	assert_int_equal(rw_Message_verify(out, (size_t)n), 0);
	*m = rw_Message_root(out);
	return rw_Message_body_type(*m);
}

static const rw_Completion_t *completion(void *s, uint64_t dispatch)
{
	const rw_Message_t *m;
	int t;
	while ((t = next(s, &m)) >= 0)
		if (t == rw_Body_Completion && rw_Message_dispatch_id(m) == dispatch)
			return rw_Message_body_as_Completion(m);
	return NULL;
}

static uint8_t msgbuf[8192] __attribute__((aligned(8)));

static void feed(const char *rid, struct fb_builder *b, uint64_t dispatch, int kind, fb_ref_t body)
{
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, dispatch);
	rw_Message_add_body(b, (uint8_t)kind, body);
	ssize_t n = rw_Message_finish(b, rw_Message_end(b));
	assert_true(n > 0);
	proto_on_message(&P, rid, strlen(rid), msgbuf, (size_t)n);
}

static void hello(const char *rid, uint32_t lease_ms)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t id = fb_create_string(&b, rid);
	rw_CoordinatorHello_start(&b);
	rw_CoordinatorHello_add_identity(&b, id);
	rw_CoordinatorHello_add_lease_ms(&b, lease_ms);
	feed(rid, &b, 0, rw_Body_CoordinatorHello, rw_CoordinatorHello_end(&b));
}

static void request(const char *rid, uint64_t dispatch, int akind, uint64_t sandbox)
{
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	fb_ref_t action;
	if (akind == rw_Action_Open) {
		fb_ref_t name = fb_create_string(&b, "noop");
		rw_Open_start(&b);
		rw_Open_add_profile(&b, name);
		action = rw_Open_end(&b);
	} else if (akind == rw_Action_Exec) {
		fb_ref_t sh = fb_create_string(&b, "true");
		rw_Exec_start(&b);
		rw_Exec_add_sandbox(&b, sandbox);
		rw_Exec_add_shell(&b, sh);
		action = rw_Exec_end(&b);
	} else {
		rw_Close_start(&b);
		rw_Close_add_sandbox(&b, sandbox);
		action = rw_Close_end(&b);
	}
	rw_Request_start(&b);
	rw_Request_add_request_id(&b, dispatch);
	rw_Request_add_action(&b, (uint8_t)akind, action);
	feed(rid, &b, dispatch, rw_Body_Request, rw_Request_end(&b));
}

static uint64_t opened(void *s, uint64_t dispatch)
{
	const rw_Completion_t *c = completion(s, dispatch);
	assert_non_null(c);
	assert_int_equal(rw_Completion_status(c), rw_Status_OK);
	const rw_Opened_t *o = rw_Completion_result_as_Opened(c);
	assert_non_null(o);
	return rw_Opened_sandbox(o);
}

static void test_hello_open_exec_close(void **state)
{
	(void)state;
	pool_up(4);
	void *s = dealer("c1");
	hello("c1", 5000);
	const rw_Message_t *m;
	assert_int_equal(next(s, &m), rw_Body_PoolHello);
	const rw_PoolHello_t *h = rw_Message_body_as_PoolHello(m);
	assert_string_equal(rw_PoolHello_identity(h), "unit-pool");
	assert_int_equal(rw_PoolHello_max_inflight(h), 64);
	request("c1", 1, rw_Action_Open, 0);
	uint64_t box = opened(s, 1);
	request("c1", 2, rw_Action_Exec, box);
	const rw_Completion_t *c = completion(s, 2);
	assert_non_null(c);
	assert_int_equal(rw_Completion_status(c), rw_Status_OK);
	assert_non_null(rw_Completion_result_as_ExecResult(c));
	/* The same dispatch again: answered from the cache, not run again. */
	request("c1", 2, rw_Action_Exec, box);
	assert_non_null(completion(s, 2));
	/* Another coordinator cannot use c1's sandbox. */
	void *s2 = dealer("c2");
	request("c2", 3, rw_Action_Exec, box);
	c = completion(s2, 3);
	assert_int_equal(rw_Completion_status(c), rw_Status_NOT_FOUND);
	request("c1", 4, rw_Action_Close, box);
	assert_int_equal(rw_Completion_status(completion(s, 4)), rw_Status_OK);
	assert_null(box_find(&P, box));
	zmq_close(s);
	zmq_close(s2);
	pool_down();
}

static void test_capacity_limit(void **state)
{
	(void)state;
	pool_up(2);
	void *s = dealer("c1");
	hello("c1", 5000);
	request("c1", 1, rw_Action_Open, 0);
	request("c1", 2, rw_Action_Open, 0);
	request("c1", 3, rw_Action_Open, 0);
	opened(s, 1);
	opened(s, 2);
	assert_int_equal(rw_Completion_status(completion(s, 3)), rw_Status_NO_CAPACITY);
	zmq_close(s);
	pool_down();
}

/* A coordinator silent past its lease loses its sandboxes; a peer that owns nothing and
 * stays silent is forgotten. */
static void test_lease_expiry_and_peer_table(void **state)
{
	(void)state;
	pool_up(100);
	void *s = dealer("c1");
	hello("c1", 1000);
	request("c1", 1, rw_Action_Open, 0);
	uint64_t box = opened(s, 1);
	for (int i = 0; i < 50; i++) { /* coordinators that say hello and go */
		char rid[16];
		snprintf(rid, sizeof(rid), "gone-%d", i);
		hello(rid, 200);
	}
	assert_int_equal(P.npeers, 51);
	uint64_t now = rollout__now_ns();
	proto_tick(&P, now + ROLLOUT_MS(500));
	assert_int_equal(P.npeers, 1); /* the 50 are gone, c1 keeps its lease */
	assert_non_null(box_find(&P, box));
	proto_tick(&P, now + ROLLOUT_MS(1500));
	assert_null(box_find(&P, box)); /* lease expired */
	/* c1 keeps its cached answers (dedupe after a reconnect) until they expire. */
	assert_int_equal(P.npeers, 1);
	acache_expire(&P.cache, now + 120 * 1000000000ull);
	proto_tick(&P, now + 120 * 1000000000ull);
	assert_int_equal(P.npeers, 0);
	zmq_close(s);
	pool_down();
}

/* Issue 10 #7: an answer for a peer the ROUTER cannot reach waits, and goes when the peer
 * is heard from again. */
static void test_answer_kept_for_unreachable_peer(void **state)
{
	(void)state;
	pool_up(4);
	hello("ghost", 5000); /* its PoolHello is lost: nobody is connected as "ghost" */
	request("ghost", 1, rw_Action_Open, 0);
	struct peer *g = P.peers;
	assert_non_null(g);
	assert_int_equal(g->nout, 1);
	/* Ticks retry and keep it while the lease lasts. */
	proto_tick(&P, rollout__now_ns());
	assert_int_equal(g->nout, 1);
	void *s = dealer("ghost");
	hello("ghost", 5000);
	assert_int_equal(g->nout, 0);
	opened(s, 1);
	zmq_close(s);
	pool_down();
}

static void test_cancel_queued_open(void **state)
{
	(void)state;
	pool_up(4);
	void *s = dealer("c1");
	hello("c1", 5000);
	request("c1", 1, rw_Action_Open, 0);
	uint64_t box = opened(s, 1);
	struct fb_builder b;
	fb_builder_init(&b, msgbuf, sizeof(msgbuf));
	rw_Cancel_start(&b);
	rw_Cancel_add_target_dispatch_id(&b, 99);
	feed("c1", &b, 0, rw_Body_Cancel, rw_Cancel_end(&b)); /* nothing to cancel: no answer */
	assert_null(completion(s, 99));
	assert_non_null(box_find(&P, box));
	zmq_close(s);
	pool_down();
}

int main(void)
{
	rlog_min_level = RLOG_ERROR;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_open_exec_close),
		cmocka_unit_test(test_capacity_limit),
		cmocka_unit_test(test_lease_expiry_and_peer_table),
		cmocka_unit_test(test_answer_kept_for_unreachable_peer),
		cmocka_unit_test(test_cancel_queued_open),
	};
	return cmocka_run_group_tests_name("pool_proto", tests, NULL, NULL);
}
