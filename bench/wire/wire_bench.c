/* rollout-bench wire: build + verify + read round trips of the two records that
 * dominate the data path, on one core: an exec request (3 argv strings, 200 bytes of
 * stdin) and an exec result (1 KiB of stdout). Medians over several timed runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "rollout_wire.h"

static _Alignas(8) uint8_t buf[4096];
static _Alignas(8) uint8_t copy[4096];
static uint8_t payload[1024];
static volatile uint64_t sink;

/* One request round trip: build in place, copy out (as a ring reader does), verify,
 * read the fields a pool reads. Returns the record size. */
static size_t request_roundtrip(uint64_t id)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	fb_ref_t a[3] = { fb_create_string(&b, "python3"), fb_create_string(&b, "-c"),
			  fb_create_string(&b, "import sys; print(sys.stdin.read())") };
	fb_ref_t argv = fb_create_vec_ref(&b, a, 3);
	fb_ref_t in = fb_create_vec_u8(&b, payload, 200);
	rw_Exec_start(&b);
	rw_Exec_add_sandbox(&b, id * 7);
	rw_Exec_add_argv(&b, argv);
	rw_Exec_add_stdin(&b, in);
	rw_Exec_add_timeout_ms(&b, 30000);
	fb_ref_t ex = rw_Exec_end(&b);
	rw_Request_start(&b);
	rw_Request_add_request_id(&b, id);
	rw_Request_add_action(&b, rw_Action_Exec, ex);
	fb_ref_t rq = rw_Request_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Request, rq);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	if (n < 0)
		abort();
	memcpy(copy, buf, (size_t)n);
	if (rw_Message_verify(copy, (size_t)n))
		abort();
	const rw_Request_t *r = rw_Message_body_as_Request(rw_Message_root(copy));
	const rw_Exec_t *e = rw_Request_action_as_Exec(r);
	fb_strvec_t av = rw_Exec_argv(e);
	const uint8_t *p;
	size_t pl = rw_Exec_stdin(e, &p);
	sink += rw_Request_request_id(r) + rw_Exec_sandbox(e) + fb_strvec_len(av) +
		(uint8_t)fb_strvec_at(av, 2)[0] + pl + p[pl - 1] + rw_Exec_timeout_ms(e);
	return (size_t)n;
}

static size_t result_roundtrip(uint64_t id)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	fb_ref_t out = fb_create_vec_u8(&b, payload, 1024);
	rw_ExecResult_start(&b);
	rw_ExecResult_add_exit_code(&b, 1);
	rw_ExecResult_add_stdout(&b, out);
	rw_ExecResult_add_wall_us(&b, id);
	rw_ExecResult_add_cpu_us(&b, id / 2);
	fb_ref_t r = rw_ExecResult_end(&b);
	rw_Completion_start(&b);
	rw_Completion_add_request_id(&b, id);
	rw_Completion_add_result(&b, rw_Result_ExecResult, r);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	if (n < 0)
		abort();
	memcpy(copy, buf, (size_t)n);
	if (rw_Message_verify(copy, (size_t)n))
		abort();
	const rw_Completion_t *cp = rw_Message_body_as_Completion(rw_Message_root(copy));
	const rw_ExecResult_t *er = rw_Completion_result_as_ExecResult(cp);
	const uint8_t *p;
	size_t pl = rw_ExecResult_stdout(er, &p);
	sink += rw_Completion_request_id(cp) + (uint64_t)rw_ExecResult_exit_code(er) + pl + p[pl - 1] +
		rw_ExecResult_wall_us(er);
	return (size_t)n;
}

/* Round trips per second of fn over `seconds`, checking the clock every 1024 calls. */
static double rate(size_t (*fn)(uint64_t), double seconds, size_t *size)
{
	uint64_t start = bench_now_ns(), deadline = start + (uint64_t)(seconds * 1e9), n = 0, now;
	do {
		for (int i = 0; i < 1024; i++)
			*size = fn(n++);
		now = bench_now_ns();
	} while (now < deadline);
	return (double)n * 1e9 / (double)(now - start);
}

static int run(int argc, char **argv)
{
	int runs = 7;
	double seconds = 0.3;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			continue;
		else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else {
			fprintf(stderr, "usage: rollout-bench wire [--json] [--runs N] [--seconds S]\n");
			return 2;
		}
	}
	if (runs < 1 || runs > 1000 || seconds <= 0) {
		fprintf(stderr, "rollout-bench wire: --runs must be 1..1000 and --seconds > 0\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	double req[1000], res[1000];
	size_t req_size = 0, res_size = 0;
	rate(request_roundtrip, 0.05, &req_size); /* warm caches and the branch predictor */
	for (int r = 0; r < runs; r++) {
		req[r] = rate(request_roundtrip, seconds, &req_size);
		res[r] = rate(result_roundtrip, seconds, &res_size);
		bench_note("run %d/%d: exec request %.2f M/s (%zu B), exec result %.2f M/s (%zu B)", r + 1,
			   runs, req[r] / 1e6, req_size, res[r] / 1e6, res_size);
	}
	bench_json_begin();
	bench_json_str("suite", "wire");
	bench_json_int("runs", runs);
	bench_json_int("exec_request_bytes", (int64_t)req_size);
	bench_json_int("exec_result_bytes", (int64_t)res_size);
	bench_json_num("exec_request_roundtrip_per_s", bench_quantile(req, (size_t)runs, 0.5));
	bench_json_num("exec_result_roundtrip_per_s", bench_quantile(res, (size_t)runs, 0.5));
	bench_json_num("ns_per_exec_request", 1e9 / bench_quantile(req, (size_t)runs, 0.5));
	bench_json_end();
	return 0;
}

BENCH_SUITE(wire, "wire", "build + verify + read of exec request and exec result records", run)
