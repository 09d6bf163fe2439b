/* rollout-bench gateway: what the E2B SDK pays over the Python binding. Starts
 * rollout-pool + rolloutd + rollout-gateway on loopback, then in the same run:
 *   create_run_kill  E2B JS SDK: Sandbox.create, commands.run("true"), kill
 *   run              E2B JS SDK: commands.run("true") on a live sandbox
 *   direct_run       the same exec through the Python binding (librollout), on a live sandbox
 * The direct side runs before and after the SDK side and its samples are pooled, so load
 * that drifts during the run weighs on both. Needs root, node and the npm package e2b
 * (installed into BUILD/gateway-npm as the gateway_sdk test does). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define E2B_VERSION "2.51.0"

/* Runs cmd through sh, returns its stdout's last line parsed as JSON (NULL on failure). */
static json_t *run_json(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	if (!p)
		return NULL;
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, p) > 0) {
		free(last);
		last = strdup(line);
	}
	free(line);
	int st = pclose(p);
	json_t *j = last && st == 0 ? json_loads(last, 0, NULL) : NULL;
	free(last);
	return j;
}

/* Appends the numbers of array key of j to v. */
static size_t take(json_t *j, const char *key, double *v, size_t at, size_t cap)
{
	json_t *a = json_object_get(j, key), *x;
	size_t i;
	json_array_foreach(a, i, x) if (at < cap) v[at++] = json_number_value(x);
	return at;
}

static int gateway_main(int argc, char **argv)
{
	bool json = false;
	int n = 200;
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { "iterations", required_argument, NULL, 'n' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else if (ch == 'n')
			n = atoi(optarg);
		else {
			printf("usage: rollout-bench gateway [--json] [--iterations N]\n"
			       "E2B JS SDK through rollout-gateway (create+run+kill, run) against the same\n"
			       "exec through the Python binding, in one run.\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (n < 10 || n > 100000 || geteuid() != 0) {
		fprintf(stderr, "rollout-bench gateway: --iterations 10..100000; rollout-pool needs root\n");
		return 2;
	}
	char bin[PATH_MAX - 512];
	ssize_t sl = readlink("/proc/self/exe", bin, sizeof(bin) - 1);
	bin[sl > 0 ? sl : 0] = 0;
	char *slash = strrchr(bin, '/');
	if (slash)
		*slash = 0;
	if ((slash = strrchr(bin, '/'))) /* BUILD/bench/rollout-bench -> BUILD */
		*slash = 0;
	char sdk[PATH_MAX], cmd[4 * PATH_MAX];
	snprintf(sdk, sizeof(sdk), "%s/gateway-npm/node_modules/e2b", bin);
	if (access(sdk, R_OK)) {
		bench_note("gateway: installing e2b@%s into %s/gateway-npm", E2B_VERSION, bin);
		snprintf(
		    cmd, sizeof(cmd),
		    "npm install --prefix '%s/gateway-npm' --no-audit --no-fund --loglevel=error e2b@%s >&2",
		    bin, E2B_VERSION);
		if (system(cmd) != 0) {
			fprintf(stderr, "rollout-bench gateway: cannot install the e2b npm package\n");
			return 1;
		}
	}
	int me = (int)getpid(), port = 45000 + me % 15000;
	char dir[128], cfg[192];
	snprintf(dir, sizeof(dir), "/tmp/rollout-bench-gw-%d", me);
	snprintf(cfg, sizeof(cfg), "%s/cfg.yaml", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return 1;
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(
	    f,
	    "rolloutd:\n  socket: %s/rolloutd.sock\n  pools: [{endpoint: tcp://127.0.0.1:%d}]\n"
	    "pool:\n  listen: tcp://127.0.0.1:%d\n  cgroup: rollout-bench-gw-%d\n"
	    "  profiles: [{name: default, warm: 32, max: 256, memory_mb: 256, pids: 64}]\n"
	    "gateway:\n  listen: 127.0.0.1:%d\n  api_keys: [bench-key-%d]\n  templates: {base: default}\n",
	    dir, port, port, me, port + 1, me);
	fclose(f);
	char exe[3][PATH_MAX];
	snprintf(exe[0], sizeof(exe[0]), "%s/pool/rollout-pool", bin);
	snprintf(exe[1], sizeof(exe[1]), "%s/coordinator/rolloutd", bin);
	snprintf(exe[2], sizeof(exe[2]), "%s/gateway/rollout-gateway", bin);
	pid_t pids[3] = { bench_spawn_daemon(exe[0], cfg), bench_spawn_daemon(exe[1], cfg),
			  bench_spawn_daemon(exe[2], cfg) };
	int rc = 1;
	/* Ready when the gateway can create a sandbox (the pool link is up). */
	snprintf(
	    cmd, sizeof(cmd),
	    "for i in $(seq 200); do id=$(curl -s -m 2 -X POST -H 'X-API-Key: bench-key-%d' "
	    "-d '{\"templateID\":\"base\"}' http://127.0.0.1:%d/v2/sandboxes | sed -n "
	    "'s/.*\"sandboxID\":\"\\([a-z0-9]*\\)\".*/\\1/p'); [ -n \"$id\" ] && { curl -s -X DELETE -H "
	    "'X-API-Key: bench-key-%d' http://127.0.0.1:%d/sandboxes/$id; exit 0; }; sleep 0.1; done; exit 1",
	    me, port + 1, me, port + 1);
	if (system(cmd) != 0) {
		fprintf(stderr, "rollout-bench gateway: daemons not ready\n");
		goto out;
	}
	size_t cap = (size_t)n * 2;
	double *crk = calloc(cap, sizeof(double)), *run = calloc(cap, sizeof(double)),
	       *direct = calloc(cap, sizeof(double));
	size_t ncrk = 0, nrun = 0, ndirect = 0;
	char direct_cmd[2 * PATH_MAX + 256];
	snprintf(direct_cmd, sizeof(direct_cmd),
		 "PYTHONPATH='%s/client/python' ROLLOUT_LIBRARY='%s/client/librollout.so' python3 "
		 "'%s/direct_bench.py' "
		 "'%s/rolloutd.sock' %d",
		 ROLLOUT_SOURCE_DIR, bin, GW_BENCH_DIR, dir, n / 2);
	snprintf(cmd, sizeof(cmd),
		 "E2B_SDK_PATH='%s' E2B_API_URL=http://127.0.0.1:%d E2B_SANDBOX_URL=http://127.0.0.1:%d "
		 "E2B_API_KEY=bench-key-%d node '%s/gateway_bench.mjs' %d",
		 sdk, port + 1, port + 1, me, GW_BENCH_DIR, n);
	bench_note("gateway: %d iterations each; direct (Python binding) before and after the SDK", n);
	json_t *d1 = run_json(direct_cmd), *s = d1 ? run_json(cmd) : NULL,
	       *d2 = s ? run_json(direct_cmd) : NULL;
	if (!d2) {
		fprintf(stderr, "rollout-bench gateway: a measuring step failed\n");
		json_decref(d1);
		json_decref(s);
		goto free_out;
	}
	ndirect = take(d1, "direct_run_ms", direct, 0, cap);
	ndirect = take(d2, "direct_run_ms", direct, ndirect, cap);
	ncrk = take(s, "create_run_kill_ms", crk, 0, cap);
	nrun = take(s, "run_ms", run, 0, cap);
	json_decref(d1);
	json_decref(s);
	json_decref(d2);
	double p_crk = bench_quantile(crk, ncrk, 0.5), p_run = bench_quantile(run, nrun, 0.5),
	       p_dir = bench_quantile(direct, ndirect, 0.5);
	bench_note("create+run+kill (E2B SDK)  p50 %.2f ms  p99 %.2f ms", p_crk,
		   bench_quantile(crk, ncrk, 0.99));
	bench_note("run \"true\"     (E2B SDK)  p50 %.2f ms  p99 %.2f ms", p_run,
		   bench_quantile(run, nrun, 0.99));
	bench_note("same exec (Python binding)  p50 %.2f ms  p99 %.2f ms; SDK/direct %.2fx", p_dir,
		   bench_quantile(direct, ndirect, 0.99), p_run / p_dir);
	if (json) {
		bench_json_begin();
		bench_json_num("create_run_kill_p50_ms", p_crk);
		bench_json_num("run_p50_ms", p_run);
		bench_json_num("direct_run_p50_ms", p_dir);
		bench_json_num("run_over_direct", p_run / p_dir);
		bench_json_int("iterations", n);
		bench_json_bool("create_run_kill_target_met", p_crk <= 15);
		bench_json_bool("run_ratio_target_met", p_run <= 2 * p_dir);
		bench_json_end();
	}
	rc = 0;
free_out:
	free(crk);
	free(run);
	free(direct);
out:
	for (int i = 2; i >= 0; i--) {
		kill(pids[i], SIGTERM);
		waitpid(pids[i], NULL, 0);
	}
	unlink(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}

BENCH_SUITE(gateway, "gateway",
	    "E2B JS SDK through rollout-gateway vs the Python binding (create+run+kill, run)", gateway_main)
