/* rollout-bench ring: the shared-memory rings between two processes pinned to different
 * cores, against ZeroMQ ipc:// on the same workloads in the same run. Streaming (64-byte and
 * 4 KiB records raw, 64-byte FlatBuffers built in place and verified per record) and round
 * trips (both sides polling; both sides sleeping when idle). Medians over --runs runs. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "barrier.h"
#include "bench.h"
#include "ring.h"
#include "rollout/error.h"
#include "rollout_wire.h"

struct opts {
	int runs;
	uint64_t stream_n; /* records per streaming run */
	uint64_t big_n;    /* 4 KiB records per run */
	uint64_t rtt_n;    /* round trips per run */
	uint64_t zmq_n;    /* messages per ZeroMQ streaming run */
	uint64_t zmq_rtt_n;
	int cpu_a, cpu_b;
};

static volatile uint64_t sink;

/* ---- two pinned processes around one segment ---- */

typedef int (*child_fn)(struct shm_seg *seg, const struct opts *o, void *arg);

static pid_t spawn(struct shm_seg *seg, const struct opts *o, child_fn fn, void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		bench_pin_cpu(o->cpu_b);
		_exit(fn(seg, o, arg));
	}
	return pid;
}

static int reap(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "rollout-bench ring: peer process failed (status %d)\n", st);
		return -1;
	}
	return 0;
}

/* Gives up on a spin loop whose peer process has exited (it failed). */
static void check_peer(pid_t pid, uint64_t *spins)
{
	if (++*spins & 0xfffff)
		return;
	int st;
	if (waitpid(pid, &st, WNOHANG) == pid) {
		fprintf(stderr, "rollout-bench ring: peer process exited early (status %d)\n", st);
		exit(1);
	}
}

static int new_seg(struct shm_seg *seg, uint32_t ring)
{
	struct shm_seg_opts so = { .sq_size = ring, .cq_size = ring, .memory_node = -1 };
	int rc = shm_seg_create(seg, &so);
	if (rc)
		fprintf(stderr, "rollout-bench ring: segment: %s\n", rollout_strerror(rc));
	return rc;
}

static struct shm_waitcfg polling(void)
{
	struct shm_waitcfg c;
	shm_waitcfg_default(&c);
	c.spin_ns = 2000000000u; /* never sleeps within a run */
	return c;
}

/* ---- streaming ---- */

enum kind { RAW64, FB64, RAW4K };

static uint32_t kind_len(enum kind k)
{
	return k == RAW4K ? 4096 : 64;
}

/* Builds the 64-byte-class record in place: a Message carrying a Heartbeat. */
static ssize_t build_fb(void *at, size_t cap, uint64_t i)
{
	struct fb_builder b;
	fb_builder_init(&b, at, cap);
	rw_Heartbeat_start(&b);
	rw_Heartbeat_add_seq(&b, i);
	rw_Heartbeat_add_sent_ns(&b, i * 3);
	fb_ref_t hb = rw_Heartbeat_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Heartbeat, hb);
	return rw_Message_finish(&b, rw_Message_end(&b));
}

struct stream_arg {
	enum kind kind;
	uint64_t n;
};

static int stream_writer(struct shm_seg *seg, const struct opts *o, void *p)
{
	struct stream_arg *a = p;
	struct shm_waitcfg wc = polling();
	struct shm_writer w;
	if (shm_writer_init(&w, seg, SHM_SQ, &wc))
		return 1;
	/* A FlatBuffer is built into the most it may need and committed at its real size. */
	uint32_t len = a->kind == FB64 ? 128 : kind_len(a->kind);
	static uint8_t src[4096];
	memset(src, 0x5a, sizeof(src));
	for (uint64_t i = 0; i < a->n; i++) {
		int err;
		uint8_t *at;
		while (!(at = shm_writer_reserve(&w, len, &err))) {
			shm_writer_publish(&w);
			if (err != -EAGAIN)
				return 2;
			shm_cpu_relax();
		}
		uint32_t used = len;
		if (a->kind == FB64) {
			ssize_t n = build_fb(at, 128, i);
			if (n < 0)
				return 3;
			used = (uint32_t)n;
		} else {
			memcpy(at, &i, 8);
			memcpy(at + 8, src, len - 8);
		}
		shm_writer_commit(&w, used);
		if ((i & 31) == 31)
			shm_writer_publish(&w);
	}
	shm_writer_publish(&w);
	return 0;
}

/* The reader side, in the measuring process: copy out, check (verify for FlatBuffers),
 * release. Timed from the first record to the last. */
static double stream_run(const struct opts *o, enum kind kind, uint64_t n)
{
	struct shm_seg seg;
	if (new_seg(&seg, 1u << 20))
		return -1;
	struct shm_waitcfg wc = polling();
	struct shm_reader r;
	if (shm_reader_init(&r, &seg, SHM_SQ, &wc))
		return -1;
	struct stream_arg a = { kind, n };
	pid_t pid = spawn(&seg, o, stream_writer, &a);
	uint64_t t0 = 0, spins = 0;
	for (uint64_t i = 0; i < n; i++) {
		const void *d;
		uint32_t len;
		int rc;
		while ((rc = shm_reader_peek(&r, &d, &len)) == -EAGAIN)
			check_peer(pid, &spins);
		if (rc)
			abort();
		if (i == 0)
			t0 = bench_now_ns();
		if (kind == FB64) {
			if (rw_Message_verify(d, len))
				abort();
			const rw_Heartbeat_t *hb = rw_Message_body_as_Heartbeat(rw_Message_root(d));
			if (rw_Heartbeat_seq(hb) != i)
				abort();
		} else {
			uint64_t v;
			memcpy(&v, d, 8);
			if (v != i)
				abort();
			sink += ((const uint8_t *)d)[len - 1];
		}
		shm_reader_release(&r);
	}
	uint64_t dt = bench_now_ns() - t0;
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	if (reap(pid))
		return -1;
	return (double)(n - 1) * 1e9 / (double)dt;
}

/* ---- round trips ---- */

struct rtt_arg {
	uint64_t n;
	bool sleep;
};

static int rtt_echo(struct shm_seg *seg, const struct opts *o, void *p)
{
	struct rtt_arg *a = p;
	struct shm_waitcfg wc = polling();
	if (a->sleep)
		wc.spin_ns = 0;
	struct shm_reader r;
	struct shm_writer w;
	if (shm_reader_init(&r, seg, SHM_SQ, &wc) || shm_writer_init(&w, seg, SHM_CQ, &wc))
		return 1;
	for (uint64_t i = 0; i < a->n; i++) {
		const void *d;
		uint32_t len;
		int rc;
		while ((rc = shm_reader_peek(&r, &d, &len)) == -EAGAIN)
			if (shm_reader_wait(&r, 5000))
				return 2;
		if (rc || shm_writer_send(&w, d, len))
			return 3;
		shm_reader_release(&r);
	}
	shm_reader_destroy(&r);
	return 0;
}

static int rtt_run(const struct opts *o, bool sleep, uint64_t *lat, uint64_t n)
{
	struct shm_seg seg;
	if (new_seg(&seg, 1u << 16))
		return -1;
	struct shm_waitcfg wc = polling();
	if (sleep)
		wc.spin_ns = 0;
	struct shm_reader r;
	struct shm_writer w;
	if (shm_reader_init(&r, &seg, SHM_CQ, &wc) || shm_writer_init(&w, &seg, SHM_SQ, &wc))
		return -1;
	struct rtt_arg a = { n, sleep };
	pid_t pid = spawn(&seg, o, rtt_echo, &a);
	uint8_t msg[64] = { 0 };
	uint64_t spins = 0;
	for (uint64_t i = 0; i < n; i++) {
		memcpy(msg, &i, 8);
		uint64_t t0 = bench_now_ns();
		if (shm_writer_send(&w, msg, sizeof(msg)))
			abort();
		const void *d;
		uint32_t len;
		int rc;
		while ((rc = shm_reader_peek(&r, &d, &len)) == -EAGAIN) {
			if (sleep && shm_reader_wait(&r, 5000))
				abort();
			check_peer(pid, &spins);
		}
		uint64_t v;
		memcpy(&v, d, 8);
		if (rc || v != i)
			abort();
		shm_reader_release(&r);
		lat[i] = bench_now_ns() - t0;
	}
	shm_reader_destroy(&r);
	shm_seg_close(&seg);
	return reap(pid);
}

/* ---- ZeroMQ ipc:// baselines ---- */

static void ipc_endpoint(char *buf, size_t cap, const char *what)
{
	snprintf(buf, cap, "ipc:///tmp/rollout-bench-%d-%s", (int)getpid(), what);
}

static int zmq_pusher(struct shm_seg *seg, const struct opts *o, void *p)
{
	const char *ep = p;
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_PUSH);
	int hwm = 100000;
	zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
	if (zmq_connect(s, ep))
		return 1;
	uint8_t msg[64] = { 0 };
	for (uint64_t i = 0; i < o->zmq_n; i++) {
		memcpy(msg, &i, 8);
		if (zmq_send(s, msg, sizeof(msg), 0) != sizeof(msg))
			return 2;
	}
	int linger = -1;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

static double zmq_stream_run(const struct opts *o)
{
	char ep[128];
	ipc_endpoint(ep, sizeof(ep), "push");
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_PULL);
	int hwm = 100000;
	zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (zmq_bind(s, ep))
		return -1;
	pid_t pid = spawn(NULL, o, zmq_pusher, ep);
	uint8_t msg[64];
	uint64_t t0 = 0;
	for (uint64_t i = 0; i < o->zmq_n; i++) {
		if (zmq_recv(s, msg, sizeof(msg), 0) != sizeof(msg))
			abort();
		if (i == 0)
			t0 = bench_now_ns();
		uint64_t v;
		memcpy(&v, msg, 8);
		if (v != i)
			abort();
	}
	uint64_t dt = bench_now_ns() - t0;
	zmq_close(s);
	zmq_ctx_term(ctx);
	unlink(ep + 6);
	if (reap(pid))
		return -1;
	return (double)(o->zmq_n - 1) * 1e9 / (double)dt;
}

static int zmq_replier(struct shm_seg *seg, const struct opts *o, void *p)
{
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_REP);
	if (zmq_connect(s, (const char *)p))
		return 1;
	uint8_t msg[64];
	for (uint64_t i = 0; i < o->zmq_rtt_n; i++) {
		int n = zmq_recv(s, msg, sizeof(msg), 0);
		if (n != sizeof(msg) || zmq_send(s, msg, sizeof(msg), 0) != sizeof(msg))
			return 2;
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	return 0;
}

static int zmq_rtt_run(const struct opts *o, uint64_t *lat)
{
	char ep[128];
	ipc_endpoint(ep, sizeof(ep), "rep");
	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_REQ);
	if (zmq_bind(s, ep))
		return -1;
	pid_t pid = spawn(NULL, o, zmq_replier, ep);
	uint8_t msg[64] = { 0 };
	for (uint64_t i = 0; i < o->zmq_rtt_n; i++) {
		memcpy(msg, &i, 8);
		uint64_t t0 = bench_now_ns();
		if (zmq_send(s, msg, sizeof(msg), 0) != sizeof(msg) ||
		    zmq_recv(s, msg, sizeof(msg), 0) != sizeof(msg))
			abort();
		lat[i] = bench_now_ns() - t0;
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	unlink(ep + 6);
	return reap(pid);
}

/* ---- driver ---- */

static double median(double *v, int n)
{
	return bench_quantile(v, (size_t)n, 0.5);
}

static int ring_main(int argc, char **argv)
{
	struct opts o = { .runs = 5,
			  .stream_n = 5000000,
			  .big_n = 500000,
			  .rtt_n = 100000,
			  .zmq_n = 1000000,
			  .zmq_rtt_n = 20000,
			  .cpu_a = 0,
			  .cpu_b = 1 };
	bool json = false;
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { "runs", required_argument, NULL, 'r' },
					    { "records", required_argument, NULL, 'n' },
					    { "round-trips", required_argument, NULL, 't' },
					    { "cpus", required_argument, NULL, 'c' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			o.runs = atoi(optarg);
			break;
		case 'n':
			o.stream_n = strtoull(optarg, NULL, 10);
			break;
		case 't':
			o.rtt_n = strtoull(optarg, NULL, 10);
			break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &o.cpu_a, &o.cpu_b) != 2) {
				fprintf(stderr, "rollout-bench ring: --cpus wants A,B\n");
				return 2;
			}
			break;
		default:
			printf("usage: rollout-bench ring [--json] [--runs N] [--records N] [--round-trips "
			       "N] [--cpus A,B]\n"
			       "Streams records and measures round trips through the shared-memory rings "
			       "between\n"
			       "two processes pinned to cpus A and B (default 0,1), and the same workloads "
			       "through\n"
			       "ZeroMQ ipc:// PUSH/PULL and REQ/REP, in the same run. Medians over --runs "
			       "runs.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (o.runs < 1 || o.stream_n < 2 || o.rtt_n < 10) {
		fprintf(stderr, "rollout-bench ring: --runs >= 1, --records >= 2, --round-trips >= 10\n");
		return 2;
	}
	if (o.big_n > o.stream_n)
		o.big_n = o.stream_n;
	if (bench_pin_cpu(o.cpu_a)) {
		fprintf(stderr, "rollout-bench ring: cannot pin to cpu %d\n", o.cpu_a);
		return 1;
	}
	int runs = o.runs;
	double *r64 = calloc((size_t)runs, sizeof(double)), *rfb = calloc((size_t)runs, sizeof(double));
	double *r4k = calloc((size_t)runs, sizeof(double)), *rzmq = calloc((size_t)runs, sizeof(double));
	double *pp50 = calloc((size_t)runs, sizeof(double)), *pp99 = calloc((size_t)runs, sizeof(double));
	double *sp50 = calloc((size_t)runs, sizeof(double)), *sp99 = calloc((size_t)runs, sizeof(double));
	double *zp50 = calloc((size_t)runs, sizeof(double)), *ratio_fb = calloc((size_t)runs, sizeof(double));
	double *ratio_rtt = calloc((size_t)runs, sizeof(double));
	uint64_t nlat = o.rtt_n > o.zmq_rtt_n ? o.rtt_n : o.zmq_rtt_n;
	uint64_t *lat = calloc(nlat, sizeof(uint64_t));
	if (!lat || !ratio_rtt)
		return 1;
	ssize_t fb_size = build_fb((uint8_t[256]){ 0 }, 256, 12345);
	bench_note("ring: writer on cpu %d, reader on cpu %d; %d runs; FlatBuffer record %zd bytes", o.cpu_b,
		   o.cpu_a, runs, fb_size);
	for (int i = 0; i < runs; i++) {
		r64[i] = stream_run(&o, RAW64, o.stream_n);
		rfb[i] = stream_run(&o, FB64, o.stream_n);
		r4k[i] = stream_run(&o, RAW4K, o.big_n);
		rzmq[i] = zmq_stream_run(&o);
		if (rtt_run(&o, false, lat, o.rtt_n))
			return 1;
		pp50[i] = (double)bench_quantile_u64(lat, o.rtt_n, 0.5);
		pp99[i] = (double)bench_quantile_u64(lat, o.rtt_n, 0.99);
		uint64_t sleep_n = o.rtt_n / 5 > 10 ? o.rtt_n / 5 : 10;
		if (rtt_run(&o, true, lat, sleep_n))
			return 1;
		sp50[i] = (double)bench_quantile_u64(lat, sleep_n, 0.5);
		sp99[i] = (double)bench_quantile_u64(lat, sleep_n, 0.99);
		if (zmq_rtt_run(&o, lat))
			return 1;
		zp50[i] = (double)bench_quantile_u64(lat, o.zmq_rtt_n, 0.5);
		if (r64[i] < 0 || rfb[i] < 0 || r4k[i] < 0 || rzmq[i] < 0)
			return 1;
		ratio_fb[i] = rfb[i] / rzmq[i];
		ratio_rtt[i] = zp50[i] / pp50[i];
		bench_note("run %d/%d: ring 64B %.1f M/s, fb 64B %.1f M/s, 4K %.2f M/s (%.1f GB/s), zmq 64B "
			   "%.2f M/s; "
			   "rtt poll p50 %.0f p99 %.0f ns, sleep p50 %.0f ns, zmq p50 %.0f ns",
			   i + 1, runs, r64[i] / 1e6, rfb[i] / 1e6, r4k[i] / 1e6, r4k[i] * 4096 / 1e9,
			   rzmq[i] / 1e6, pp50[i], pp99[i], sp50[i], zp50[i]);
	}
	if (json) {
		bench_json_begin();
		bench_json_str("suite", "ring");
		bench_json_int("runs", runs);
		bench_json_int("fb_record_bytes", fb_size);
		bench_json_num("ring_64b_msgs_per_s", median(r64, runs));
		bench_json_num("ring_fb_64b_msgs_per_s", median(rfb, runs));
		bench_json_num("ring_4k_msgs_per_s", median(r4k, runs));
		bench_json_num("zmq_ipc_64b_msgs_per_s", median(rzmq, runs));
		bench_json_num("ratio_fb_vs_zmq", median(ratio_fb, runs));
		bench_json_num("rtt_poll_p50_ns", median(pp50, runs));
		bench_json_num("rtt_poll_p99_ns", median(pp99, runs));
		bench_json_num("rtt_sleep_p50_ns", median(sp50, runs));
		bench_json_num("rtt_sleep_p99_ns", median(sp99, runs));
		bench_json_num("zmq_reqrep_rtt_p50_ns", median(zp50, runs));
		bench_json_num("ratio_rtt_vs_zmq", median(ratio_rtt, runs));
		bench_json_end();
	} else {
		printf("ring 64B %.1f M/s, fb 64B %.1f M/s (%.1fx zmq), 4K %.2f M/s; rtt poll p50 %.0f ns "
		       "(%.0fx zmq)\n",
		       median(r64, runs) / 1e6, median(rfb, runs) / 1e6, median(ratio_fb, runs),
		       median(r4k, runs) / 1e6, median(pp50, runs), median(ratio_rtt, runs));
	}
	free(r64), free(rfb), free(r4k), free(rzmq), free(pp50), free(pp99), free(sp50), free(sp99);
	free(zp50), free(ratio_fb), free(ratio_rtt), free(lat);
	return 0;
}

BENCH_SUITE(ring, "ring", "shared-memory rings vs ZeroMQ ipc: streaming and round trips", ring_main)
