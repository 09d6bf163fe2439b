/* rollout-bench sandbox: what starting and using a sandbox costs. In one run: cold creation
 * with full isolation (the sandbox runtime in this process, as the pool's zygote runs it),
 * the same with `network: egress` (a routed veth pair and the pool's nftables table),
 * bubblewrap starting `true` with all namespaces as the reference, a warm claim and an exec
 * of `true` through a real rollout-pool (ZeroMQ round trips), then density: N live
 * sandboxes and the memory each costs (PSS of its processes). Needs root. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "rollout_wire.h"
#include "sandbox.h"

struct sopts {
	int runs;
	int creates; /* cold creations per run */
	int claims;  /* warm claims / execs per run */
	int count;   /* density target */
	char pool_bin[PATH_MAX];
	const char *root; /* profile root of the cold creations: system, / or a directory */
};

static void profile_defaults(struct sbx_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->name = "bench";
	p->root = "/";
	p->hostname = "sandbox";
	p->workdir_mb = 16;
	p->memory_mb = 256;
	p->pids = 64;
	p->timeout_ms = 10000;
	p->max_timeout_ms = 10000;
	p->output_cap = 4096;
	p->max_output_cap = 65536;
	p->nofile = 64;
	p->file_mb = 16;
	p->uid_base = 300000;
	p->uid_count = 50000;
	p->env[0] = "PATH=/usr/bin:/bin";
}

/* Cold creations with and without network: egress, alternating so that both see the same
 * load on a shared machine; each egress sandbox must have its veth pair. */
static int cold_create_pair(struct sbx_runtime *rt, const struct sbx_profile *none,
			    const struct sbx_profile *egress, int n, double *us_none, double *us_egress,
			    double *destroy_none, double *destroy_egress)
{
	for (int i = 0; i < 2 * n; i++) {
		const struct sbx_profile *p = i % 2 ? egress : none;
		struct sbx s;
		uint64_t t0 = bench_now_ns();
		int rc = sbx_create(rt, p, 1000000 + (uint64_t)i, NULL, &s);
		(i % 2 ? us_egress : us_none)[i / 2] = (double)(bench_now_ns() - t0) / 1000.0;
		if (rc || (p->net && s.net_slot < 0)) {
			fprintf(stderr, "rollout-bench sandbox: create%s: %s\n", p->net ? " (egress)" : "",
				rc ? strerror(-rc) : "no veth");
			return rc ? rc : -EIO;
		}
		/* The zygote destroys too: what a teardown costs (the veth's removal included). */
		t0 = bench_now_ns();
		sbx_destroy(rt, &s);
		(i % 2 ? destroy_egress : destroy_none)[i / 2] = (double)(bench_now_ns() - t0) / 1000.0;
	}
	return 0;
}

static int bwrap_runs(int n, double *us)
{
	for (int i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		pid_t pid = fork();
		if (pid == 0) {
			execlp("bwrap", "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
			       "--dev", "/dev", "true", (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		us[i] = (double)(bench_now_ns() - t0) / 1000.0;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr,
				"rollout-bench sandbox: bwrap failed (status %d); is bubblewrap installed?\n",
				st);
			return -1;
		}
	}
	return 0;
}

static long pss_kib(pid_t pid)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(p, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* Creates up to count sandboxes and keeps them alive; returns how many live, and the mean
 * PSS (KiB) of their init processes. */
static int density(struct sbx_runtime *rt, const struct sbx_profile *p, int count, double *pss_mean)
{
	struct sbx *all = calloc((size_t)count, sizeof(*all));
	if (!all)
		return -ENOMEM;
	int live = 0;
	uint64_t t0 = bench_now_ns();
	for (; live < count; live++) {
		int rc = sbx_create(rt, p, 2000000 + (uint64_t)live, NULL, &all[live]);
		if (rc) {
			bench_note("density: stopped at %d sandboxes: %s", live, strerror(-rc));
			break;
		}
		/* One descriptor per live sandbox (its socket): the pidfd is not needed to kill it. */
		close(all[live].pidfd);
		all[live].pidfd = -1;
		if ((live + 1) % 1000 == 0)
			bench_note("density: %d sandboxes live (%.1f s)", live + 1,
				   (double)(bench_now_ns() - t0) / 1e9);
	}
	double sum = 0;
	int measured = 0;
	for (int i = 0; i < live; i++) {
		long k = pss_kib(all[i].pid);
		if (k >= 0) {
			sum += (double)k;
			measured++;
		}
	}
	*pss_mean = measured ? sum / measured : 0;
	for (int i = 0; i < live; i++)
		sbx_destroy(rt, &all[i]);
	free(all);
	return live;
}

/* The ZeroMQ part runs in a child so that this process never has threads while it clones. */
struct pool_numbers {
	double claim_p50, exec_p50, rtt_p50;
	int ok;
};

static void pool_phase(const struct sopts *o, int fd)
{
	struct pool_numbers r = { 0 };
	char cfg[128], ep[64];
	snprintf(cfg, sizeof(cfg), "/tmp/rollout-bench-pool-%d.yaml", (int)getpid());
	snprintf(ep, sizeof(ep), "ipc:///tmp/rollout-bench-pool-%d.sock", (int)getpid());
	FILE *f = fopen(cfg, "w");
	if (!f)
		goto out;
	fprintf(f,
		"pool:\n  listen: %s\n  cgroup: rollout-bench-%d\n  profiles:\n"
		"    - {name: bench, root: \"%s\", warm: %d, max: %d, workdir_mb: 16, memory_mb: 256, pids: "
		"64}\n",
		ep, (int)getpid(), o->root, o->claims + 4, o->claims * 2 + 8);
	fclose(f);
	pid_t pool = pc_spawn_pool(o->pool_bin, cfg, ep, 20000);
	if (pool < 0) {
		fprintf(stderr, "rollout-bench sandbox: cannot start %s\n", o->pool_bin);
		goto out_cfg;
	}
	struct pc c;
	if (pc_connect(&c, ep, "bench", 60000))
		goto out_pool;
	/* Wait for the warm pool to fill: one open per claim must find a ready sandbox. */
	for (int i = 0; i < 400; i++) {
		int t = pc_recv(&c, 50);
		(void)t;
	}
	double *claim = calloc((size_t)o->claims, sizeof(double)),
	       *ex = calloc((size_t)o->claims, sizeof(double));
	uint64_t *boxes = calloc((size_t)o->claims, sizeof(uint64_t));
	int n = 0;
	for (; n < o->claims; n++) {
		struct pc_result res;
		uint64_t t0 = bench_now_ns();
		if (pc_open(&c, "bench", &res, 10000) || res.status)
			break;
		claim[n] = (double)(bench_now_ns() - t0) / 1000.0;
		boxes[n] = res.sandbox;
	}
	/* The transport alone: a heartbeat round trip, for comparison with the claim. */
	double *hb = calloc((size_t)o->claims, sizeof(double));
	for (int i = 0; i < o->claims; i++) {
		uint64_t t0 = bench_now_ns();
		pc_heartbeat(&c, (uint64_t)i);
		while (pc_recv(&c, 1000) != rw_Body_Heartbeat)
			;
		hb[i] = (double)(bench_now_ns() - t0) / 1000.0;
	}
	r.rtt_p50 = bench_quantile(hb, (size_t)o->claims, 0.5);
	free(hb);
	static const char *const argv[] = { "true", NULL };
	for (int i = 0; i < n; i++) {
		struct pc_result res;
		uint64_t t0 = bench_now_ns();
		if (pc_exec(&c, boxes[i], NULL, argv, NULL, 0, 5000, 0, &res, 10000) || res.status ||
		    res.exit_code)
			goto done;
		ex[i] = (double)(bench_now_ns() - t0) / 1000.0;
	}
	if (n == o->claims) {
		r.claim_p50 = bench_quantile(claim, (size_t)n, 0.5);
		r.exec_p50 = bench_quantile(ex, (size_t)n, 0.5);
		r.ok = 1;
	}
done:
	for (int i = 0; i < n; i++) {
		struct pc_result res;
		pc_close_sandbox(&c, boxes[i], &res);
	}
	free(claim), free(ex), free(boxes);
	pc_close(&c);
out_pool:
	kill(pool, SIGTERM);
	waitpid(pool, NULL, 0);
out_cfg:
	unlink(cfg);
out:
	if (write(fd, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	_exit(0);
}

static int run_pool_phase(const struct sopts *o, struct pool_numbers *r)
{
	int p[2];
	if (pipe(p))
		return -errno;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		pool_phase(o, p[1]);
	}
	close(p[1]);
	ssize_t n = read(p[0], r, sizeof(*r));
	close(p[0]);
	waitpid(pid, NULL, 0);
	return n == sizeof(*r) && r->ok ? 0 : -EIO;
}

static int sandbox_main(int argc, char **argv)
{
	struct sopts o = { .runs = 5, .creates = 100, .claims = 50, .count = 2000, .root = SBX_ROOT_SYSTEM };
	bool json = false;
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },          { "runs", required_argument, NULL, 'r' },
		{ "creates", required_argument, NULL, 'n' }, { "count", required_argument, NULL, 'c' },
		{ "pool", required_argument, NULL, 'p' },    { "root", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },          { 0 },
	};
	char self[PATH_MAX - 64];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(o.pool_bin, sizeof(o.pool_bin), "%s/../pool/rollout-pool", self);
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
			o.creates = atoi(optarg);
			break;
		case 'c':
			o.count = atoi(optarg);
			break;
		case 'p':
			snprintf(o.pool_bin, sizeof(o.pool_bin), "%s", optarg);
			break;
		case 'R':
			o.root = optarg;
			break;
		default:
			printf("usage: rollout-bench sandbox [--json] [--runs N] [--creates N] [--count N] "
			       "[--pool PATH] [--root system|/|DIR]\n"
			       "Cold sandbox creation vs bwrap, warm claim and exec of `true` through "
			       "rollout-pool,\n"
			       "then density: --count live sandboxes (default 2000) and their PSS. --root: "
			       "the profile root\nof the cold creations and density (default system). Needs "
			       "root.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "rollout-bench sandbox: needs root (namespaces, cgroups)\n");
		return 1;
	}
	if (o.runs < 1 || o.creates < 2 || o.count < 1) {
		fprintf(stderr, "rollout-bench sandbox: --runs >= 1, --creates >= 2, --count >= 1\n");
		return 2;
	}
	struct sbx_runtime rt;
	char group[64];
	snprintf(group, sizeof(group), "rollout-bench-%d", (int)getpid());
	int rc = sbx_runtime_init(&rt, group);
	if (rc) {
		fprintf(stderr, "rollout-bench sandbox: runtime: %s\n", strerror(-rc));
		return 1;
	}
	struct sbx_profile prof;
	profile_defaults(&prof);
	prof.root = o.root;
	if (sbx_profile_system(&prof) && (rc = sbx_runtime_system_root(&rt))) {
		fprintf(stderr, "rollout-bench sandbox: system root: %s\n", strerror(-rc));
		return 1;
	}
	int runs = o.runs;
	double *cp50 = calloc((size_t)runs, sizeof(double)), *cp99 = calloc((size_t)runs, sizeof(double));
	double *bp50 = calloc((size_t)runs, sizeof(double)), *ratio = calloc((size_t)runs, sizeof(double));
	double *wp50 = calloc((size_t)runs, sizeof(double)), *ep50 = calloc((size_t)runs, sizeof(double));
	double *tp50 = calloc((size_t)runs, sizeof(double));
	double *np50 = calloc((size_t)runs, sizeof(double)), *nratio = calloc((size_t)runs, sizeof(double));
	/* network: egress as a pool sets it up: its own range, one allowlisted destination. */
	static char *const allow[] = { "198.51.100.0/24:443/tcp" };
	struct net_profile_spec spec = { "bench-egress", NET_EGRESS, allow, 1 };
	char nerr[512];
	if ((rc = net_sys_create(&rt.net, "10.253.0.0/16", &spec, 1, rt.host_netns, nerr, sizeof(nerr)))) {
		fprintf(stderr, "rollout-bench sandbox: network: %s\n", nerr);
		return 1;
	}
	struct sbx_profile eprof = prof;
	eprof.name = "bench-egress";
	eprof.net = net_sys_profile(rt.net, 0);
	double *lat = calloc((size_t)o.creates, sizeof(double)),
	       *elat = calloc((size_t)o.creates, sizeof(double));
	double *dlat = calloc((size_t)o.creates, sizeof(double)),
	       *delat = calloc((size_t)o.creates, sizeof(double));
	double *dp50 = calloc((size_t)runs, sizeof(double)), *dep50 = calloc((size_t)runs, sizeof(double));
	bench_note("sandbox: cgroups %s; root %s; %d runs of %d creations and %d claims/execs",
		   rt.cgroups ? "on" : "off", o.root, runs, o.creates, o.claims);
	for (int i = 0; i < runs; i++) {
		/* As in the pool: network namespaces come from a stock made while idle. */
		sbx_netns_fill(&rt, 2 * o.creates);
		if (cold_create_pair(&rt, &prof, &eprof, o.creates, lat, elat, dlat, delat))
			return 1;
		cp50[i] = bench_quantile(lat, (size_t)o.creates, 0.5);
		cp99[i] = bench_quantile(lat, (size_t)o.creates, 0.99);
		np50[i] = bench_quantile(elat, (size_t)o.creates, 0.5);
		nratio[i] = np50[i] / cp50[i];
		dp50[i] = bench_quantile(dlat, (size_t)o.creates, 0.5);
		dep50[i] = bench_quantile(delat, (size_t)o.creates, 0.5);
		int nb = o.creates / 4 > 10 ? o.creates / 4 : 10;
		if (bwrap_runs(nb, lat))
			return 1;
		bp50[i] = bench_quantile(lat, (size_t)nb, 0.5);
		ratio[i] = bp50[i] / cp50[i];
		struct pool_numbers pn;
		if (run_pool_phase(&o, &pn)) {
			fprintf(stderr, "rollout-bench sandbox: the pool phase failed\n");
			return 1;
		}
		wp50[i] = pn.claim_p50;
		ep50[i] = pn.exec_p50;
		tp50[i] = pn.rtt_p50;
		bench_note("run %d/%d: cold create p50 %.0f us p99 %.0f us; with egress p50 %.0f us (%.2fx); "
			   "bwrap true p50 %.0f us (%.1fx); "
			   "warm claim p50 %.0f us (transport round trip %.0f us); exec true p50 %.0f us",
			   i + 1, runs, cp50[i], cp99[i], np50[i], nratio[i], bp50[i], ratio[i], wp50[i],
			   tp50[i], ep50[i]);
	}
	double pss = 0;
	int live = density(&rt, &prof, o.count, &pss);
	bench_note("density: %d live sandboxes, %.0f KiB PSS each", live, pss);
	cg_fini(&rt.cg);
	net_sys_destroy(rt.net);
	rt.net = NULL;
	sbx_runtime_free(&rt);
	if (json) {
		bench_json_begin();
		bench_json_str("suite", "sandbox");
		bench_json_str("root", o.root);
		bench_json_int("runs", runs);
		bench_json_num("warm_claim_p50_us", bench_quantile(wp50, (size_t)runs, 0.5));
		bench_json_num("transport_rtt_p50_us", bench_quantile(tp50, (size_t)runs, 0.5));
		bench_json_num("cold_create_p50_us", bench_quantile(cp50, (size_t)runs, 0.5));
		bench_json_num("cold_create_p99_us", bench_quantile(cp99, (size_t)runs, 0.5));
		bench_json_num("cold_create_egress_p50_us", bench_quantile(np50, (size_t)runs, 0.5));
		bench_json_num("ratio_egress_vs_none", bench_quantile(nratio, (size_t)runs, 0.5));
		bench_json_num("destroy_p50_us", bench_quantile(dp50, (size_t)runs, 0.5));
		bench_json_num("destroy_egress_p50_us", bench_quantile(dep50, (size_t)runs, 0.5));
		bench_json_num("exec_true_p50_us", bench_quantile(ep50, (size_t)runs, 0.5));
		bench_json_num("bwrap_true_p50_us", bench_quantile(bp50, (size_t)runs, 0.5));
		bench_json_num("ratio_cold_vs_bwrap", bench_quantile(ratio, (size_t)runs, 0.5));
		bench_json_int("live_sandboxes", live);
		bench_json_num("pss_per_sandbox_kib", pss);
		bench_json_end();
	} else {
		printf(
		    "cold create p50 %.0f us (%.1fx faster than bwrap; %.0f us with network: egress, %.2fx), "
		    "warm claim p50 %.0f us, exec true p50 %.0f us, "
		    "%d live at %.0f KiB PSS\n",
		    bench_quantile(cp50, (size_t)runs, 0.5), bench_quantile(ratio, (size_t)runs, 0.5),
		    bench_quantile(np50, (size_t)runs, 0.5), bench_quantile(nratio, (size_t)runs, 0.5),
		    bench_quantile(wp50, (size_t)runs, 0.5), bench_quantile(ep50, (size_t)runs, 0.5), live,
		    pss);
	}
	return live == o.count ? 0 : 1;
}

BENCH_SUITE(sandbox, "sandbox", "sandbox cold create vs bwrap, warm claim, exec, density", sandbox_main)
