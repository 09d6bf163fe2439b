/* rollout_demo: the rollout phase of an agentic RL trainer, in C, through rolloutd. B episodes
 * run at once, each in its own sandbox, each a short coding task driven step by step the
 * way an agent's tool calls are: write a source file, run it with python3, grep its output,
 * write a test and run it, run a shell pipeline, read a file back. Every step's observation
 * is checked against what the command must print. All episodes share one librollout
 * connection; an episode's next step is submitted as soon as its previous observation
 * arrives (no batch barrier).
 *
 *   rollout_demo [--socket PATH] [--episodes B] [--steps T] [--profile NAME] [--quiet]
 * Exit status 0 only if every step completed with the expected observation. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rollout/rollout.h"

#define BASE_STEPS 8

struct episode {
	uint64_t sandbox;
	int step; /* -1: opening; 0..T-1: steps; T: closing; T+1: done */
	int n;    /* the task's parameter */
	uint64_t sent_ns;
	bool failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fib(int n)
{
	uint64_t a = 0, b = 1;
	for (int i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static const char solution_py[] = "import sys\n"
				  "def f(n):\n"
				  "    a, b = 0, 1\n"
				  "    for _ in range(n):\n"
				  "        a, b = b, a + b\n"
				  "    return a\n"
				  "if __name__ == '__main__':\n"
				  "    n = int(sys.argv[1]) if len(sys.argv) > 1 else %d\n"
				  "    print('fib(%%d) = %%d' %% (n, f(n)))\n";
static const char test_py[] = "from solution import f\n"
			      "assert [f(k) for k in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]\n"
			      "print('ok')\n";

/* Submits step s of episode e (request id = episode * 1024 + step + 1) and writes into
 * expect what its observation must be. */
static int submit(rollout_client *c, struct episode *e, uint64_t id, int s, char *expect, size_t cap)
{
	char buf[1024];
	/* 256 episodes share two cores on a small box: a step may wait behind a hundred
	 * python3 start-ups (30-40 ms each there) before it runs. Its limit is for a runaway
	 * program, not for that queue. */
	struct rollout_exec x = { .timeout_ms = 120000 };
	switch (s) {
	case 0:
		snprintf(buf, sizeof(buf), solution_py, e->n);
		snprintf(expect, cap, "put");
		return rollout_put_file(c, id, e->sandbox, "solution.py", buf, strlen(buf), 0644);
	case 1:
		x.shell = "python3 solution.py";
		snprintf(expect, cap, "fib(%d) = %" PRIu64 "\n", e->n, fib(e->n));
		break;
	case 2:
		x.shell = "python3 solution.py 20 | grep -o '= [0-9]*'";
		snprintf(expect, cap, "= 6765\n");
		break;
	case 3:
		snprintf(expect, cap, "put");
		return rollout_put_file(c, id, e->sandbox, "test_solution.py", test_py, strlen(test_py),
					0644);
	case 4:
		x.shell = "python3 test_solution.py";
		snprintf(expect, cap, "ok\n");
		break;
	case 5:
		snprintf(buf, sizeof(buf), "python3 solution.py %d > out.txt && wc -l < out.txt", e->n + 1);
		x.shell = buf;
		snprintf(expect, cap, "1\n");
		break;
	case 6:
		x.shell = "grep -c 'def ' solution.py";
		snprintf(expect, cap, "1\n");
		break;
	case 7:
		snprintf(expect, cap, "fib(%d) = %" PRIu64 "\n", e->n + 1, fib(e->n + 1));
		return rollout_get_file(c, id, e->sandbox, "out.txt", 0);
	default: /* further steps: more runs of the program */
		snprintf(buf, sizeof(buf), "python3 solution.py %d", 10 + s % 50);
		x.shell = buf;
		snprintf(expect, cap, "fib(%d) = %" PRIu64 "\n", 10 + s % 50, fib(10 + s % 50));
		break;
	}
	return rollout_exec(c, id, e->sandbox, &x, 0);
}

static int submit_retry(rollout_client *c, int rc_first, int (*again)(void *), void *arg)
{
	int rc = rc_first;
	while (rc == -EAGAIN) {
		rollout_flush(c);
		rollout_wait_space(c, 65536, 1000);
		rc = again(arg);
	}
	return rc;
}

struct resubmit {
	rollout_client *c;
	struct episode *e;
	uint64_t id;
	int s;
	char *expect;
	size_t cap;
	const char *profile;
};

static int again_step(void *p)
{
	struct resubmit *r = p;
	if (r->s < 0)
		return rollout_open(r->c, r->id, r->profile, 0);
	if (r->s == INT32_MAX)
		return rollout_close(r->c, r->id, r->e->sandbox);
	return submit(r->c, r->e, r->id, r->s, r->expect, r->cap);
}

int main(int argc, char **argv)
{
	struct rollout_connect_opts o = { .gpu = -1, .name = "rollout-demo" };
	int B = 256, T = BASE_STEPS;
	bool quiet = false;
	const char *profile = "default";
	static const struct option lo[] = { { "socket", required_argument, NULL, 's' },
					    { "episodes", required_argument, NULL, 'b' },
					    { "steps", required_argument, NULL, 't' },
					    { "profile", required_argument, NULL, 'p' },
					    { "quiet", no_argument, NULL, 'q' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's':
			o.socket_path = optarg;
			break;
		case 'b':
			B = atoi(optarg);
			break;
		case 't':
			T = atoi(optarg);
			break;
		case 'p':
			profile = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			printf("usage: rollout_demo [--socket PATH] [--episodes B] [--steps T] [--profile "
			       "NAME] [--quiet]\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (B < 1 || B > 4000000 || T < BASE_STEPS || T > 1000) {
		fprintf(stderr, "rollout_demo: --episodes 1..4000000, --steps %d..1000\n", BASE_STEPS);
		return 2;
	}
	rollout_client *c;
	int rc = rollout_connect(&o, &c);
	if (rc) {
		fprintf(stderr, "rollout_demo: cannot connect to rolloutd: %s\n", rollout_strerror(rc));
		return 1;
	}
	struct episode *ep = calloc((size_t)B, sizeof(*ep));
	char(*expect)[256] = calloc((size_t)B, 256);
	uint64_t *lat_step = calloc((size_t)B * (size_t)T, 8), *lat_open = calloc((size_t)B, 8);
	if (!ep || !expect || !lat_step || !lat_open)
		return 1;
	size_t nstep = 0, nopen = 0;
	uint64_t status_count[16] = { 0 }, wrong = 0, steps_ok = 0;
	int done = 0, shown_errors = 0;
	uint64_t t0 = now_ns(), last_progress = t0;
	for (int i = 0; i < B; i++) {
		ep[i].step = -1;
		ep[i].n = 10 + i % 40;
		ep[i].sent_ns = now_ns();
		struct resubmit r = { c, &ep[i], (uint64_t)i * 1024, -1, NULL, 0, profile };
		rc = submit_retry(c, rollout_open(c, r.id, profile, 0), again_step, &r);
		if (rc) {
			fprintf(stderr, "rollout_demo: submit: %s\n", rollout_strerror(rc));
			return 1;
		}
	}
	rollout_flush(c);
	while (done < B) {
		struct rollout_completion cp;
		int n = rollout_next(c, &cp);
		if (n < 0) {
			fprintf(stderr, "rollout_demo: reading completions: %s\n", rollout_strerror(n));
			return 1;
		}
		if (n == 0) {
			rollout_flush(c);
			rc = rollout_wait(c, 1000);
			if (rc && rc != -ETIMEDOUT) {
				fprintf(stderr, "rollout_demo: rolloutd: %s\n", rollout_strerror(rc));
				return 1;
			}
		} else {
			int i = (int)(cp.request_id / 1024);
			if (i < 0 || i >= B) {
				fprintf(stderr, "rollout_demo: completion for unknown request %" PRIu64 "\n",
					cp.request_id);
				return 1;
			}
			struct episode *e = &ep[i];
			uint64_t lat = now_ns() - e->sent_ns;
			status_count[cp.status & 15]++;
			bool ok = cp.status == 0;
			if (e->step >= 0 && e->step < T) {
				const char *want = expect[i];
				const uint8_t *got = cp.stdout_data;
				size_t got_len = cp.stdout_len;
				if (cp.file_data) {
					got = cp.file_data;
					got_len = cp.file_len;
				}
				if (ok && strcmp(want, "put") &&
				    (got_len != strlen(want) || memcmp(got, want, got_len))) {
					ok = false;
					wrong++;
				} else if (ok && strcmp(want, "put") == 0 && got_len) {
					ok = false;
					wrong++;
				}
				if (ok && cp.exit_code != 0)
					ok = false;
				lat_step[nstep++] = lat;
				steps_ok += ok;
			} else if (e->step < 0) {
				lat_open[nopen++] = lat;
			}
			if (!ok) {
				e->failed = true;
				if (shown_errors++ < 5)
					fprintf(stderr,
						"rollout_demo: episode %d step %d: %s%s%s (exit %d, stdout "
						"'%.*s')\n",
						i, e->step, rollout_status_name(cp.status),
						cp.message ? ": " : "", cp.message ? cp.message : "",
						cp.exit_code, (int)(cp.stdout_len > 60 ? 60 : cp.stdout_len),
						cp.stdout_data ? (const char *)cp.stdout_data : "");
			}
			if (e->step == -1 && cp.status == 0)
				e->sandbox = cp.sandbox;
			if ((e->step == -1 && cp.status != 0) || e->step == T) {
				e->step = T + 1;
				done++;
			} else {
				e->step++;
				e->sent_ns = now_ns();
				uint64_t id = (uint64_t)i * 1024 + (uint64_t)e->step + 1;
				struct resubmit r = {
					c, e, id, e->step < T ? e->step : INT32_MAX, expect[i], 256, profile
				};
				rc = e->step < T ? submit(c, e, id, e->step, expect[i], 256)
						 : rollout_close(c, id, e->sandbox);
				rc = submit_retry(c, rc, again_step, &r);
				if (rc) {
					fprintf(stderr, "rollout_demo: submit: %s\n", rollout_strerror(rc));
					return 1;
				}
			}
		}
		uint64_t now = now_ns();
		if (!quiet && now - last_progress > 1000000000ull) {
			last_progress = now;
			fprintf(stderr, "  progress: %d/%d episodes done, %zu steps, %.0f steps/s\n", done, B,
				nstep, (double)nstep / ((double)(now - t0) / 1e9));
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(lat_step, nstep, 8, cmp_u64);
	qsort(lat_open, nopen, 8, cmp_u64);
	int failed = 0;
	for (int i = 0; i < B; i++)
		failed += ep[i].failed;
	printf("\nrollout demo summary\n");
	printf("  episodes           %d run concurrently, %d steps each; %d all correct, %d with failures\n",
	       B, T, B - failed, failed);
	printf("  steps              %zu (%" PRIu64 " with the expected observation, %" PRIu64
	       " wrong output)\n",
	       nstep, steps_ok, wrong);
	printf("  wall time          %.2f s\n", secs);
	printf("  throughput         %.0f steps/s\n", (double)nstep / secs);
	if (nopen)
		printf("  sandbox open       p50 %.2f ms\n", (double)lat_open[nopen / 2] / 1e6);
	if (nstep)
		printf("  step latency       p50 %.2f ms  p99 %.2f ms\n", (double)lat_step[nstep / 2] / 1e6,
		       (double)lat_step[nstep * 99 / 100] / 1e6);
	printf("  completions        ");
	for (int s = 0; s < 16; s++)
		if (status_count[s])
			printf(" %s=%" PRIu64, rollout_status_name(s), status_count[s]);
	printf("\n");
	rollout_disconnect(c);
	free(ep);
	free(expect);
	free(lat_step);
	free(lat_open);
	return failed || steps_ok != (uint64_t)B * (uint64_t)T ? 1 : 0;
}
