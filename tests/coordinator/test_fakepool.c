/* A real rolloutd against a hostile pool (RELIABILITY 30, 31): this test binds the pool's
 * ROUTER itself and answers rolloutd with malformed messages, unknown and duplicate
 * dispatch ids, multi-part and oversized messages, while a librollout trainer waits. The
 * trainer must get exactly one completion per request, rolloutd must count every refusal,
 * and an oversized message must cost the sender its connection. It also plays a pool with
 * snapshots for librollout's snapshot and checkpoint calls (issue 11). No root needed. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

#include "../common/test_port.h"
#include "completion.h"
#include "rollout/rollout.h"
#include "rollout_wire.h"

static char dir[64];
static char sock_path[128], cfg_path[160];
static int pool_port, metrics_port;
static pid_t rd = -1;
static void *zctx, *router;
static uint8_t rid[256];
static size_t rid_len;
static uint8_t buf[1 << 16] __attribute__((aligned(8)));

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Receives one [routing id][message] from rolloutd within ms; returns the body length. */
static ssize_t pool_recv(int ms)
{
	zmq_pollitem_t it = { .socket = router, .events = ZMQ_POLLIN };
	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	int n = zmq_recv(router, rid, sizeof(rid), 0);
	assert_true(n > 0);
	rid_len = (size_t)n;
	n = zmq_recv(router, buf, sizeof(buf), 0);
	assert_true(n > 0);
	return n;
}

/* Waits for a message of the given body type, skipping heartbeats. */
static ssize_t pool_expect(int body, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		ssize_t n = pool_recv((int)(end - now_ms()));
		if (n <= 0)
			continue;
		assert_int_equal(rw_Message_verify(buf, (size_t)n), 0);
		if (rw_Message_body_type(rw_Message_root(buf)) == body)
			return n;
	}
	fail_msg("no message of body type %d from rolloutd", body);
	return -1;
}

static void pool_send_parts(const void *const *parts, const size_t *lens, int n)
{
	assert_int_equal(zmq_send(router, rid, rid_len, ZMQ_SNDMORE), (int)rid_len);
	for (int i = 0; i < n; i++)
		assert_int_equal(zmq_send(router, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0),
				 (int)lens[i]);
}

static void pool_send(const void *msg, size_t len)
{
	pool_send_parts(&msg, &len, 1);
}

static void send_hello(uint64_t boot)
{
	uint8_t m[1024] __attribute__((aligned(8)));
	struct fb_builder b;
	fb_builder_init(&b, m, sizeof(m));
	fb_ref_t name = fb_create_string(&b, "default");
	rw_ProfileCapacity_start(&b);
	rw_ProfileCapacity_add_profile(&b, name);
	rw_ProfileCapacity_add_total(&b, 10);
	rw_ProfileCapacity_add_free(&b, 10);
	fb_ref_t pc = rw_ProfileCapacity_end(&b);
	fb_ref_t vec = fb_create_vec_ref(&b, &pc, 1);
	rw_PoolHello_start(&b);
	rw_PoolHello_add_boot_id(&b, boot);
	rw_PoolHello_add_capacity(&b, vec);
	rw_PoolHello_add_max_inflight(&b, 64);
	fb_ref_t h = rw_PoolHello_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_PoolHello, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	pool_send(m, (size_t)n);
}

static size_t completion(uint8_t *m, size_t cap, uint64_t dispatch, uint64_t request, int result, uint64_t sb)
{
	struct rw_completion k = { .dispatch_id = dispatch,
				   .request_id = request,
				   .status = rw_Status_OK,
				   .result_type = (uint8_t)result,
				   .sandbox = sb };
	struct fb_builder b;
	fb_builder_init(&b, m, cap);
	ssize_t n = rw_completion_build(&b, &k);
	assert_true(n > 0);
	return (size_t)n;
}

/* rolloutd_refused_records_total from rolloutd's /metrics. */
static long refused_total(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	assert_int_equal(write(s, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	static char text[1 << 17];
	size_t got = 0;
	for (ssize_t n; (n = read(s, text + got, sizeof(text) - 1 - got)) > 0;)
		got += (size_t)n;
	text[got] = 0;
	close(s);
	const char *p = strstr(text, "\nrolloutd_refused_records_total ");
	assert_non_null(p);
	return strtol(p + strlen("\nrolloutd_refused_records_total "), NULL, 10);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/rollout-fakepool-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/rd.sock", dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/rd.yaml", dir);
	zctx = zmq_ctx_new();
	router = zmq_socket(zctx, ZMQ_ROUTER);
	int zero = 0;
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	char ep[64];
	for (int i = 0; i < 50; i++) {
		pool_port = 20000 + (getpid() * 13 + i * 97) % 30000;
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", pool_port);
		if (zmq_bind(router, ep) == 0)
			break;
		pool_port = 0;
	}
	assert_true(pool_port > 0);
	/* A port nobody listens on now (another test's pool may hold pool_port + 1). */
	metrics_port = test_free_port((unsigned)getpid() + 7);
	assert_true(metrics_port > 0);
	FILE *f = fopen(cfg_path, "w");
	fprintf(
	    f,
	    "rolloutd:\n  socket: %s\n  metrics: 127.0.0.1:%d\n  heartbeat_ms: 100\n  pool_timeout_ms: 5000\n"
	    "  drain_ms: 100\n  pools: [{endpoint: tcp://127.0.0.1:%d}]\n",
	    sock_path, metrics_port, pool_port);
	fclose(f);
	const char *bin = getenv("ROLLOUT_BINARY_DIR");
	char exe[512];
	snprintf(exe, sizeof(exe), "%s/coordinator/rolloutd", bin ? bin : ".");
	rd = fork();
	if (rd == 0) {
		execl(exe, exe, "--config", cfg_path, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	pool_expect(rw_Body_CoordinatorHello, 5000);
	send_hello(0x1234);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int st = 0;
	if (rd > 0) {
		kill(rd, SIGTERM);
		waitpid(rd, &st, 0);
	}
	zmq_close(router);
	zmq_ctx_term(zctx);
	unlink(cfg_path);
	rmdir(dir);
	/* rolloutd survived everything and stopped cleanly. */
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}

static rollout_client *attach(void)
{
	rollout_client *c = NULL;
	struct rollout_connect_opts o = { .socket_path = sock_path, .gpu = -1, .name = "fakepool" };
	for (int i = 0; i < 100 && rollout_connect(&o, &c); i++)
		usleep(20000);
	assert_non_null(c);
	return c;
}

/* Every completion that arrives within ms, counted by request id. */
static int collect(rollout_client *c, uint64_t id, int ms, struct rollout_completion *last)
{
	int n = 0;
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		struct rollout_completion k;
		while (rollout_next(c, &k) == 1) {
			assert_int_equal(k.request_id, id);
			*last = k;
			n++;
		}
		rollout_wait(c, 20);
	}
	return n;
}

static void test_hostile_pool(void **state)
{
	(void)state;
	rollout_client *c = attach();
	long refused0 = refused_total();
	assert_int_equal(rollout_open(c, 7, "default", 0), 0);
	rollout_flush(c);
	ssize_t n = pool_expect(rw_Body_Request, 5000);
	uint64_t dispatch = rw_Message_dispatch_id(rw_Message_root(buf));
	(void)n;
	/* Garbage, a multi-part message and an unknown dispatch id: all refused, none reaches
	 * the trainer. */
	uint8_t junk[64];
	memset(junk, 0x5a, sizeof(junk));
	pool_send(junk, sizeof(junk));
	uint8_t m[512] __attribute__((aligned(8)));
	size_t ml = completion(m, sizeof(m), dispatch, 7, rw_Result_Opened, 0x42);
	const void *parts[2] = { m, m };
	size_t lens[2] = { ml, ml };
	pool_send_parts(parts, lens, 2);
	uint8_t u[512] __attribute__((aligned(8)));
	size_t ul = completion(u, sizeof(u), dispatch + 1000, 7, rw_Result_Opened, 0x43);
	pool_send(u, ul);
	struct rollout_completion k;
	assert_int_equal(collect(c, 7, 300, &k), 0);
	/* The real answer, then the same again: one completion. */
	pool_send(m, ml);
	pool_send(m, ml);
	assert_int_equal(collect(c, 7, 500, &k), 1);
	assert_int_equal(k.status, 0);
	assert_int_equal(k.sandbox, 0x42);
	long refused = refused_total();
	assert_true(refused - refused0 >= 4);
	rollout_disconnect(c);
}

/* RELIABILITY 30: a message over rolloutd's limit (128 MiB) costs the pool its connection:
 * nothing of it is delivered, rolloutd reconnects and says hello again. */
static void test_oversized_message(void **state)
{
	(void)state;
	size_t big = (128u << 20) + 4096;
	uint8_t *huge = calloc(1, big);
	assert_non_null(huge);
	pool_send(huge, big);
	free(huge);
	/* The link drops; rolloutd's DEALER reconnects and greets the pool again. */
	pool_expect(rw_Body_CoordinatorHello, 8000);
	send_hello(0x1234);
	rollout_client *c = attach();
	assert_int_equal(rollout_open(c, 9, "default", 0), 0);
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	uint64_t dispatch = rw_Message_dispatch_id(rw_Message_root(buf));
	uint8_t m[512] __attribute__((aligned(8)));
	pool_send(m, completion(m, sizeof(m), dispatch, 9, rw_Result_Opened, 0x51));
	struct rollout_completion k;
	assert_int_equal(collect(c, 9, 500, &k), 1);
	assert_int_equal(k.sandbox, 0x51);
	rollout_disconnect(c);
}

/* The dispatch id and request of the message rolloutd sent last (in buf). */
static const rw_Request_t *last_request(uint64_t *dispatch)
{
	const rw_Message_t *m = rw_Message_root(buf);
	*dispatch = rw_Message_dispatch_id(m);
	return rw_Message_body_as_Request(m);
}

/* A pool answer naming a checkpoint (ckpt NULL: none) with an empty result of type result
 * or a Snapshotted one (snap set). */
static size_t answer_ckpt(uint8_t *m, size_t cap, uint64_t dispatch, uint64_t request, int status, int result,
			  const char *ckpt, uint64_t ckpt_rid, const char *snap)
{
	struct fb_builder b;
	fb_builder_init(&b, m, cap);
	fb_ref_t ck = ckpt ? fb_create_string(&b, ckpt) : 0, res = 0;
	if (snap) {
		fb_ref_t id = fb_create_string(&b, snap);
		rw_Snapshotted_start(&b);
		rw_Snapshotted_add_snapshot(&b, id);
		rw_Snapshotted_add_bytes(&b, 12345);
		rw_Snapshotted_add_files(&b, 7);
		rw_Snapshotted_add_frozen_us(&b, 321);
		res = rw_Snapshotted_end(&b);
		result = rw_Result_Snapshotted;
	} else if (result == rw_Result_ExecResult) {
		rw_ExecResult_start(&b);
		res = rw_ExecResult_end(&b);
	}
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, request);
	rw_Completion_add_status(&b, (uint16_t)status);
	if (ck) {
		rw_Completion_add_checkpoint(&b, ck);
		rw_Completion_add_checkpoint_request_id(&b, ckpt_rid);
	}
	if (res)
		rw_Completion_add_result(&b, (uint8_t)result, res);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_dispatch_id(&b, dispatch);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 0);
	return (size_t)n;
}

static void send_heartbeat(uint64_t boot)
{
	uint8_t m[256] __attribute__((aligned(8)));
	struct fb_builder b;
	fb_builder_init(&b, m, sizeof(m));
	rw_Heartbeat_start(&b);
	rw_Heartbeat_add_seq(&b, 1);
	rw_Heartbeat_add_boot_id(&b, boot);
	fb_ref_t h = rw_Heartbeat_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Heartbeat, h);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	pool_send(m, (size_t)n);
}

/* Issue 11 through librollout and a real rolloutd: rollout_open_ex puts the snapshot,
 * checkpoint_every, group and lease on the wire; rollout_snapshot reaches the sandbox's
 * pool; the completion exposes Snapshotted and the checkpoint; when the pool restarts, the
 * step in flight and the next one complete SANDBOX_LOST with the latest checkpoint. */
static void test_snapshot_and_checkpoint(void **state)
{
	(void)state;
	rollout_client *c = attach();
	struct rollout_open_opts o = { .profile = "default",
				       .snapshot = "snap-a",
				       .group = "g1",
				       .lease_ms = 60000,
				       .checkpoint_every = 2 };
	assert_int_equal(rollout_open_ex(c, 1, &o, 0), 0);
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	uint64_t dispatch;
	const rw_Request_t *q = last_request(&dispatch);
	const rw_Open_t *op = rw_Request_action_as_Open(q);
	assert_non_null(op);
	assert_string_equal(rw_Open_profile(op), "default");
	assert_string_equal(rw_Open_snapshot(op), "snap-a");
	assert_string_equal(rw_Open_group(op), "g1");
	assert_int_equal(rw_Open_lease_ms(op), 60000);
	assert_int_equal(rw_Open_checkpoint_every(op), 2);
	uint8_t m[1024] __attribute__((aligned(8)));
	pool_send(m, completion(m, sizeof(m), dispatch, 1, rw_Result_Opened, 0x77));
	struct rollout_completion k;
	assert_int_equal(collect(c, 1, 300, &k), 1);
	assert_int_equal(k.sandbox, 0x77);
	assert_null(k.snapshot);
	assert_null(k.checkpoint);
	assert_int_equal(rollout_open(c, 99, NULL, 0), 0); /* the plain open still works */
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	op = rw_Request_action_as_Open(last_request(&dispatch));
	assert_string_equal(rw_Open_profile(op), "default");
	assert_null(rw_Open_snapshot(op));
	assert_int_equal(rw_Open_checkpoint_every(op), 0);
	pool_send(m, completion(m, sizeof(m), dispatch, 99, rw_Result_Opened, 0x78));
	assert_int_equal(collect(c, 99, 300, &k), 1);

	/* A step that made a checkpoint. */
	struct rollout_exec e = { .shell = "echo 1 >> steps" };
	assert_int_equal(rollout_exec(c, 2, 0x77, &e, 0), 0);
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	last_request(&dispatch);
	pool_send(
	    m, answer_ckpt(m, sizeof(m), dispatch, 2, rw_Status_OK, rw_Result_ExecResult, "ck-2", 2, NULL));
	assert_int_equal(collect(c, 2, 300, &k), 1);
	assert_string_equal(k.checkpoint, "ck-2");
	assert_int_equal(k.checkpoint_request_id, 2);

	/* An explicit snapshot, also the checkpoint. */
	assert_int_equal(rollout_snapshot(c, 3, 0x77, true), 0);
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	q = last_request(&dispatch);
	const rw_Snapshot_t *sn = rw_Request_action_as_Snapshot(q);
	assert_non_null(sn);
	assert_int_equal(rw_Snapshot_sandbox(sn), 0x77);
	assert_true(rw_Snapshot_checkpoint(sn));
	pool_send(m, answer_ckpt(m, sizeof(m), dispatch, 3, rw_Status_OK, 0, "snap-3", 3, "snap-3"));
	assert_int_equal(collect(c, 3, 300, &k), 1);
	assert_int_equal(k.status, 0);
	assert_string_equal(k.snapshot, "snap-3");
	assert_int_equal(k.snapshot_bytes, 12345);
	assert_int_equal(k.snapshot_files, 7);
	assert_int_equal(k.frozen_us, 321);
	assert_string_equal(k.checkpoint, "snap-3");
	assert_int_equal(k.checkpoint_request_id, 3);

	/* A step in flight when the pool restarts: lost, with the checkpoint. */
	assert_int_equal(rollout_exec(c, 4, 0x77, &e, 0), 0);
	rollout_flush(c);
	pool_expect(rw_Body_Request, 5000);
	send_heartbeat(0x9999);
	assert_int_equal(collect(c, 4, 500, &k), 1);
	assert_int_equal(k.status, 2 /* SANDBOX_LOST */);
	assert_true(k.infra_failed);
	assert_string_equal(k.checkpoint, "snap-3");
	assert_int_equal(k.checkpoint_request_id, 3);
	assert_null(k.snapshot);
	/* The next step learns it too; closing the lost sandbox ends that. */
	assert_int_equal(rollout_exec(c, 5, 0x77, &e, 0), 0);
	rollout_flush(c);
	assert_int_equal(collect(c, 5, 300, &k), 1);
	assert_int_equal(k.status, 2);
	assert_string_equal(k.checkpoint, "snap-3");
	assert_int_equal(rollout_close(c, 6, 0x77), 0);
	rollout_flush(c);
	assert_int_equal(collect(c, 6, 300, &k), 1);
	assert_int_equal(k.status, 0);
	assert_int_equal(rollout_exec(c, 7, 0x78, &e, 0), 0); /* lost without a checkpoint */
	rollout_flush(c);
	assert_int_equal(collect(c, 7, 300, &k), 1);
	assert_int_equal(k.status, 5 /* NOT_FOUND */);
	assert_null(k.checkpoint);
	assert_int_equal(rollout_open_ex(c, 8, NULL, 0), -EINVAL);
	rollout_disconnect(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hostile_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_and_checkpoint, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
