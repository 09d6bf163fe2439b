/* rollout-bench e2e: no-op steps end to end, one trainer (this process, librollout) ->
 * rolloutd -> one rollout-pool with the noop profile, on loopback, steps pipelined with a
 * window. In the same run, the obvious alternative: the same trainer calling the pool
 * directly, one ZeroMQ round trip per step. Both daemons are started here. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "rollout/rollout.h"

struct eopts {
	int runs;
	int window;
	int sandboxes;
	double seconds;
	int reqrep_steps;
	char dir[PATH_MAX - 64];
};

/* Pipelined: keeps `window` steps in flight over `sandboxes` noop sandboxes for `seconds`. */
static int pipelined(const struct eopts *o, const char *sock, double *steps_per_s, double *p50, double *p99)
{
	struct rollout_connect_opts co = {
		.socket_path = sock, .gpu = -1, .name = "bench", .timeout_ms = 5000
	};
	rollout_client *c = NULL;
	int rc = -1;
	for (int i = 0; i < 100 && rc; i++) {
		rc = rollout_connect(&co, &c);
		if (rc)
			usleep(50000);
	}
	if (rc)
		return rc;
	uint64_t *sb = calloc((size_t)o->sandboxes, 8);
	uint64_t *sent = calloc((size_t)o->window, 8);
	size_t cap = 1u << 22, nlat = 0;
	uint64_t *lat = calloc(cap, 8);
	if (!sb || !sent || !lat)
		return -ENOMEM;
	/* Sandboxes; retried until the pool link is up. */
	for (int i = 0; i < o->sandboxes; i++) {
		for (int tries = 0;; tries++) {
			rollout_open(c, (uint64_t)i, "noop", 0);
			rollout_flush(c);
			struct rollout_completion cp;
			while (rollout_next(c, &cp) != 1)
				if ((rc = rollout_wait(c, 5000)))
					goto out;
			if (cp.status == 0) {
				sb[i] = cp.sandbox;
				break;
			}
			if (tries > 100) {
				rc = -EIO;
				goto out;
			}
			usleep(50000);
		}
	}
	static const char *const argv[] = { "true", NULL };
	struct rollout_exec e = { .argv = argv };
	uint64_t t0 = bench_now_ns(), end = t0 + (uint64_t)(o->seconds * 1e9), done = 0, next = 0;
	int inflight = 0;
	for (;;) {
		uint64_t now = bench_now_ns();
		bool stop = now >= end;
		while (!stop && inflight < o->window) {
			uint64_t slot = next % (uint64_t)o->window;
			rc = rollout_exec(c, next, sb[next % (uint64_t)o->sandboxes], &e, 0);
			if (rc == -EAGAIN)
				break;
			if (rc)
				goto out;
			sent[slot] = now;
			next++;
			inflight++;
		}
		rollout_flush(c);
		struct rollout_completion cp;
		int n, got = 0;
		while ((n = rollout_next(c, &cp)) == 1) {
			if (cp.status != 0) {
				fprintf(stderr, "rollout-bench e2e: step failed: %s\n",
					rollout_status_name(cp.status));
				rc = -EIO;
				goto out;
			}
			uint64_t t = bench_now_ns();
			if (nlat < cap)
				lat[nlat++] = t - sent[cp.request_id % (uint64_t)o->window];
			inflight--;
			done++;
			got++;
		}
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (stop && inflight == 0)
			break;
		if (!got && (rc = rollout_wait(c, 1000)) && rc != -ETIMEDOUT)
			goto out;
	}
	*steps_per_s = (double)done / ((double)(bench_now_ns() - t0) / 1e9);
	*p50 = (double)bench_quantile_u64(lat, nlat, 0.5) / 1000.0;
	*p99 = (double)bench_quantile_u64(lat, nlat, 0.99) / 1000.0;
	rc = 0;
out:
	for (int i = 0; i < o->sandboxes; i++)
		if (sb[i])
			rollout_close(c, 1000000000ull + (uint64_t)i, sb[i]);
	rollout_flush(c);
	rollout_disconnect(c);
	free(sb), free(sent), free(lat);
	return rc;
}

/* The alternative: one synchronous round trip to the pool per step. */
static int reqrep(const struct eopts *o, const char *endpoint, double *steps_per_s)
{
	struct pc c;
	int rc = pc_connect(&c, endpoint, "bench-reqrep", 10000);
	if (rc) {
		fprintf(stderr, "rollout-bench e2e: cannot reach the pool at %s: %s\n", endpoint,
			rollout_strerror(rc));
		return rc;
	}
	struct pc_result r;
	if ((rc = pc_open(&c, "noop", &r, 5000)) || r.status) {
		fprintf(stderr, "rollout-bench e2e: open on the pool: rc %d status %d\n", rc, r.status);
		pc_close(&c);
		return -EIO;
	}
	static const char *const argv[] = { "true", NULL };
	uint64_t t0 = bench_now_ns();
	uint64_t sandbox = r.sandbox;
	for (int i = 0; i < o->reqrep_steps; i++)
		if ((rc = pc_exec(&c, sandbox, NULL, argv, NULL, 0, 0, 0, &r, 5000)) || r.status) {
			fprintf(stderr, "rollout-bench e2e: step %d on the pool: rc %d status %d\n", i, rc,
				r.status);
			pc_close(&c);
			return -EIO;
		}
	*steps_per_s = (double)o->reqrep_steps / ((double)(bench_now_ns() - t0) / 1e9);
	pc_close(&c);
	return 0;
}

static int e2e_main(int argc, char **argv)
{
	struct eopts o = {
		.runs = 5, .window = 4096, .sandboxes = 64, .seconds = 2.0, .reqrep_steps = 20000
	};
	bool json = false;
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },         { "runs", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' }, { "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },         { 0 }
	};
	bench_build_dir(o.dir, sizeof(o.dir));
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'r':
			o.runs = atoi(optarg);
			break;
		case 'w':
			o.window = atoi(optarg);
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		default:
			printf("usage: rollout-bench e2e [--json] [--runs N] [--window W] [--seconds S]\n"
			       "No-op steps through librollout -> rolloutd -> rollout-pool (noop profile), W "
			       "in flight,\n"
			       "against one ZeroMQ round trip to the pool per step. Starts both daemons "
			       "itself.\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (o.runs < 1 || o.window < 1 || o.seconds <= 0) {
		fprintf(stderr, "rollout-bench e2e: --runs >= 1, --window >= 1, --seconds > 0\n");
		return 2;
	}
	int me = (int)getpid(), port = 40000 + me % 20000;
	char cfg[128], sock[128], ep[64], pool_exe[PATH_MAX], rd_exe[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "/tmp/rollout-bench-e2e-%d.yaml", me);
	snprintf(sock, sizeof(sock), "/tmp/rollout-bench-e2e-%d.sock", me);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
	snprintf(pool_exe, sizeof(pool_exe), "%s/pool/rollout-pool", o.dir);
	snprintf(rd_exe, sizeof(rd_exe), "%s/coordinator/rolloutd", o.dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(f,
		"rolloutd:\n  socket: %s\n  pools: [{endpoint: %s}]\n"
		"pool:\n  listen: %s\n  cgroup: rollout-bench-e2e-%d\n  max_inflight: %d\n"
		"  profiles: [{name: noop, type: noop, max: 100000}]\n",
		sock, ep, ep, me, o.window * 2);
	fclose(f);
	pid_t pool = bench_spawn_daemon(pool_exe, cfg), rd = bench_spawn_daemon(rd_exe, cfg);
	double *sps = calloc((size_t)o.runs, 8), *p50 = calloc((size_t)o.runs, 8),
	       *p99 = calloc((size_t)o.runs, 8);
	double *rr = calloc((size_t)o.runs, 8), *ratio = calloc((size_t)o.runs, 8);
	int rc = 0;
	bench_note("e2e: window %d over %d noop sandboxes, %.1f s per run; req/rep: %d steps per run",
		   o.window, o.sandboxes, o.seconds, o.reqrep_steps);
	for (int i = 0; i < o.runs && !rc; i++) {
		if ((rc = pipelined(&o, sock, &sps[i], &p50[i], &p99[i]))) {
			fprintf(stderr, "rollout-bench e2e: pipelined run failed: %s\n",
				rollout_strerror(rc));
			break;
		}
		if ((rc = reqrep(&o, ep, &rr[i]))) {
			fprintf(stderr, "rollout-bench e2e: req/rep run failed\n");
			break;
		}
		ratio[i] = sps[i] / rr[i];
		bench_note("run %d/%d: %.0f steps/s (rtt p50 %.0f us, p99 %.0f us); req/rep %.0f steps/s; "
			   "ratio %.1f",
			   i + 1, o.runs, sps[i], p50[i], p99[i], rr[i], ratio[i]);
	}
	kill(rd, SIGTERM);
	kill(pool, SIGTERM);
	waitpid(rd, NULL, 0);
	waitpid(pool, NULL, 0);
	unlink(cfg);
	if (rc)
		return 1;
	size_t n = (size_t)o.runs;
	if (json) {
		bench_json_begin();
		bench_json_str("suite", "e2e");
		bench_json_int("runs", o.runs);
		bench_json_int("window", o.window);
		bench_json_num("steps_per_s", bench_quantile(sps, n, 0.5));
		bench_json_num("step_rtt_p50_us", bench_quantile(p50, n, 0.5));
		bench_json_num("step_rtt_p99_us", bench_quantile(p99, n, 0.5));
		bench_json_num("reqrep_steps_per_s", bench_quantile(rr, n, 0.5));
		bench_json_num("ratio_vs_reqrep", bench_quantile(ratio, n, 0.5));
		bench_json_end();
	} else {
		printf("%.0f steps/s pipelined, %.0f steps/s req/rep (%.1fx)\n", bench_quantile(sps, n, 0.5),
		       bench_quantile(rr, n, 0.5), bench_quantile(ratio, n, 0.5));
	}
	free(sps), free(p50), free(p99), free(rr), free(ratio);
	return 0;
}

BENCH_SUITE(e2e, "e2e", "no-op steps trainer -> rolloutd -> pool, pipelined vs one round trip per step",
	    e2e_main)
