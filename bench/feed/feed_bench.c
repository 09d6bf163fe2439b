/* rollout-bench feed: does rolloutd keep the GPU fed? A model of a trainer's rollout phase,
 * said plainly in the output: B trajectories of T turns; each turn the policy "generates" on
 * a simulated GPU, then the trajectory runs one real sandbox step through rolloutd and a
 * real rollout-pool. The GPU is a single timeline, no CPU is burnt: a generation batch of
 * n trajectories occupies it for gen_base + n * gen_per_traj milliseconds of wall time.
 * Sandbox steps are real commands with a spread of latencies (true .. sleep 0.15).
 *
 *   synchronous: generate for the whole batch, run all B steps, wait for the slowest, repeat;
 *   pipelined:   each trajectory goes back to the GPU queue as soon as its observation
 *                arrives; whenever the GPU is free it takes everything ready (continuous
 *                batching).
 *
 * Same trajectories, sandboxes and commands for both loops, in the same run. GPU busy is
 * GPU time over the wall time of the whole phase, tail included. */
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
#include "rollout/rollout.h"

struct fopts {
	int trajectories, turns;
	double gen_base_ms, gen_per_traj_ms;
	char dir[PATH_MAX - 128];
};

/* The command of trajectory i at turn t: a fixed spread of latencies. */
static const char *step_cmd(int i, int t)
{
	static const char *const cmds[] = { "true",       "true",       "true",       "true",
					    "sleep 0.02", "sleep 0.02", "sleep 0.02", "sleep 0.05",
					    "sleep 0.05", "sleep 0.1",  "sleep 0.15" };
	unsigned h = (unsigned)i * 2654435761u ^ (unsigned)t * 40503u;
	h ^= h >> 13;
	return cmds[h % (sizeof(cmds) / sizeof(cmds[0]))];
}

struct run {
	double wall_s, gpu_s;
	int steps;
};

static int submit_step(rollout_client *c, uint64_t id, uint64_t sb, const char *cmd)
{
	struct rollout_exec e = { .shell = cmd, .timeout_ms = 10000 };
	int rc;
	while ((rc = rollout_exec(c, id, sb, &e, 0)) == -EAGAIN) {
		rollout_flush(c);
		rollout_wait_space(c, 4096, 100);
	}
	return rc;
}

/* Waits for one completion until `until` (ns); returns the trajectory index or -1. */
static int next_done(rollout_client *c, uint64_t until, int *status)
{
	for (;;) {
		struct rollout_completion cp;
		int n = rollout_next(c, &cp);
		if (n < 0)
			return n;
		if (n == 1) {
			*status = cp.status;
			return (int)(cp.request_id >> 16);
		}
		uint64_t now = bench_now_ns();
		if (until && now >= until)
			return -1;
		/* Never sleep past the end of the GPU's batch: the simulated GPU must not idle
		 * because of timer rounding. Under a millisecond left, sleep exactly that. */
		int ms = until ? (int)((until - now) / 1000000) : 1000;
		if (until && ms == 0) {
			struct timespec ts = { 0, (long)(until - now) };
			nanosleep(&ts, NULL);
			continue;
		}
		rollout_flush(c);
		int rc = rollout_wait(c, ms);
		if (rc && rc != -ETIMEDOUT)
			return rc;
	}
}

static double gen_ms(const struct fopts *o, int n)
{
	return o->gen_base_ms + o->gen_per_traj_ms * n;
}

static void gpu_sleep(double ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6) };
	nanosleep(&ts, NULL);
}

static int run_sync(const struct fopts *o, rollout_client *c, const uint64_t *sb, struct run *r)
{
	uint64_t t0 = bench_now_ns();
	double gpu = 0;
	for (int t = 0; t < o->turns; t++) {
		double g = gen_ms(o, o->trajectories);
		gpu_sleep(g); /* the GPU generates for the whole batch */
		gpu += g;
		for (int i = 0; i < o->trajectories; i++)
			if (submit_step(c, ((uint64_t)i << 16) | (uint64_t)t, sb[i], step_cmd(i, t)))
				return -EIO;
		rollout_flush(c);
		for (int got = 0; got < o->trajectories;) {
			int st, i = next_done(c, 0, &st);
			if (i < 0)
				return i;
			if (st)
				return -EIO;
			got++;
		}
	}
	r->wall_s = (double)(bench_now_ns() - t0) / 1e9;
	r->gpu_s = gpu / 1000;
	r->steps = o->trajectories * o->turns;
	return 0;
}

static int run_pipelined(const struct fopts *o, rollout_client *c, const uint64_t *sb, struct run *r)
{
	int B = o->trajectories;
	int *turn = calloc((size_t)B, sizeof(int)), *ready = calloc((size_t)B, sizeof(int)),
	    *batch = calloc((size_t)B, sizeof(int));
	int nready = B, nbatch = 0, finished = 0, steps = 0;
	for (int i = 0; i < B; i++)
		ready[i] = i;
	uint64_t t0 = bench_now_ns(), gpu_end = 0;
	double gpu = 0;
	while (finished < B) {
		uint64_t now = bench_now_ns();
		if (nbatch && now >= gpu_end) {
			/* Generation done: each trajectory in the batch takes its sandbox step. */
			for (int k = 0; k < nbatch; k++) {
				int i = batch[k];
				if (submit_step(c, ((uint64_t)i << 16) | (uint64_t)turn[i], sb[i],
						step_cmd(i, turn[i])))
					return -EIO;
			}
			rollout_flush(c);
			nbatch = 0;
		}
		if (!nbatch && nready) {
			/* The GPU is free: it takes everything that is ready (continuous batching). */
			memcpy(batch, ready, (size_t)nready * sizeof(int));
			nbatch = nready;
			nready = 0;
			double g = gen_ms(o, nbatch);
			gpu += g;
			gpu_end = bench_now_ns() + (uint64_t)(g * 1e6);
		}
		int st, i = next_done(c, nbatch ? gpu_end : 0, &st);
		if (i == -1)
			continue;
		if (i < 0)
			return i;
		if (st)
			return -EIO;
		steps++;
		if (++turn[i] == o->turns)
			finished++;
		else
			ready[nready++] = i;
	}
	r->wall_s = (double)(bench_now_ns() - t0) / 1e9;
	r->gpu_s = gpu / 1000;
	r->steps = steps;
	free(turn), free(ready), free(batch);
	return 0;
}

static int feed_main(int argc, char **argv)
{
	struct fopts o = { .trajectories = 256, .turns = 16, .gen_base_ms = 5, .gen_per_traj_ms = 3 };
	bool json = false;
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { "trajectories", required_argument, NULL, 'b' },
					    { "turns", required_argument, NULL, 't' },
					    { "gen-base-ms", required_argument, NULL, 'g' },
					    { "gen-per-traj-ms", required_argument, NULL, 'p' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	bench_build_dir(o.dir, sizeof(o.dir));
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'b':
			o.trajectories = atoi(optarg);
			break;
		case 't':
			o.turns = atoi(optarg);
			break;
		case 'g':
			o.gen_base_ms = atof(optarg);
			break;
		case 'p':
			o.gen_per_traj_ms = atof(optarg);
			break;
		default:
			printf("usage: rollout-bench feed [--json] [--trajectories B] [--turns T] "
			       "[--gen-base-ms MS]\n"
			       "                          [--gen-per-traj-ms MS]\n"
			       "Simulated GPU (a batch of n takes gen-base + n * gen-per-traj ms, no CPU "
			       "burnt) and real\n"
			       "sandbox steps through rolloutd + rollout-pool: synchronous vs pipelined "
			       "rollout loop.\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (o.trajectories < 1 || o.trajectories > 4096 || o.turns < 1 || o.turns > 65535) {
		fprintf(stderr, "rollout-bench feed: --trajectories 1..4096, --turns 1..65535\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "rollout-bench feed: rollout-pool needs root\n");
		return 1;
	}
	int me = (int)getpid(), port = 40000 + me % 20000;
	char cfg[128], sock[128], pool_exe[PATH_MAX], rd_exe[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "/tmp/rollout-bench-feed-%d.yaml", me);
	snprintf(sock, sizeof(sock), "/tmp/rollout-bench-feed-%d.sock", me);
	snprintf(pool_exe, sizeof(pool_exe), "%s/pool/rollout-pool", o.dir);
	snprintf(rd_exe, sizeof(rd_exe), "%s/coordinator/rolloutd", o.dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(f,
		"rolloutd:\n  socket: %s\n  pools: [{endpoint: tcp://127.0.0.1:%d}]\n"
		"pool:\n  listen: tcp://127.0.0.1:%d\n  cgroup: rollout-bench-feed-%d\n"
		"  profiles: [{name: default, warm: %d, max: %d, memory_mb: 256, pids: 64}]\n",
		sock, port, port, me, o.trajectories, o.trajectories + 16);
	fclose(f);
	pid_t pool = bench_spawn_daemon(pool_exe, cfg), rd = bench_spawn_daemon(rd_exe, cfg);
	int rc = -1;
	rollout_client *c = NULL;
	struct rollout_connect_opts co = { .socket_path = sock, .gpu = 0, .name = "feed" };
	for (int i = 0; i < 100 && rc; i++)
		if ((rc = rollout_connect(&co, &c)))
			usleep(50000);
	uint64_t *sb = calloc((size_t)o.trajectories, 8);
	struct run sync_r = { 0 }, pipe_r = { 0 };
	if (rc)
		goto out;
	/* The sandboxes (not timed): one per trajectory, retried until the pool is up. */
	for (int i = 0; i < o.trajectories; i++) {
		for (int tries = 0;; tries++) {
			struct rollout_completion cp;
			rc = rollout_open_sync(c, "default", &cp, 30000);
			if (!rc && cp.status == 0) {
				sb[i] = cp.sandbox;
				break;
			}
			if (tries > 200) {
				rc = -EIO;
				goto out;
			}
			usleep(50000);
		}
	}
	bench_note("feed: %d trajectories x %d turns; simulated GPU: a batch of n takes %.1f + n x %.1f ms "
		   "(no CPU); "
		   "steps are real sandbox commands (true .. sleep 0.15) through rolloutd and rollout-pool",
		   o.trajectories, o.turns, o.gen_base_ms, o.gen_per_traj_ms);
	if ((rc = run_sync(&o, c, sb, &sync_r)) || (rc = run_pipelined(&o, c, sb, &pipe_r)))
		goto out;
	bench_note("synchronous: %.2f s, GPU busy %.1f%%, %.0f steps/s", sync_r.wall_s,
		   100 * sync_r.gpu_s / sync_r.wall_s, sync_r.steps / sync_r.wall_s);
	bench_note("pipelined:   %.2f s, GPU busy %.1f%%, %.0f steps/s", pipe_r.wall_s,
		   100 * pipe_r.gpu_s / pipe_r.wall_s, pipe_r.steps / pipe_r.wall_s);
out:
	if (c)
		rollout_disconnect(c);
	kill(rd, SIGTERM);
	kill(pool, SIGTERM);
	waitpid(rd, NULL, 0);
	waitpid(pool, NULL, 0);
	unlink(cfg);
	free(sb);
	if (rc) {
		fprintf(stderr, "rollout-bench feed: failed: %s\n", rollout_strerror(rc));
		return 1;
	}
	double bs = sync_r.gpu_s / sync_r.wall_s, bp = pipe_r.gpu_s / pipe_r.wall_s;
	double ss = sync_r.steps / sync_r.wall_s, sp = pipe_r.steps / pipe_r.wall_s;
	if (json) {
		bench_json_begin();
		bench_json_str("suite", "feed");
		bench_json_str("model",
			       "simulated GPU timeline (no CPU burnt), real sandbox steps via rolloutd");
		bench_json_int("trajectories", o.trajectories);
		bench_json_int("turns", o.turns);
		bench_json_num("gpu_busy_sync", bs);
		bench_json_num("gpu_busy_pipelined", bp);
		bench_json_num("steps_per_s_sync", ss);
		bench_json_num("steps_per_s_pipelined", sp);
		bench_json_num("speedup", sync_r.wall_s / pipe_r.wall_s);
		bench_json_end();
	} else {
		printf("GPU busy %.1f%% pipelined vs %.1f%% synchronous; %.2fx faster\n", 100 * bp, 100 * bs,
		       sync_r.wall_s / pipe_r.wall_s);
	}
	return 0;
}

BENCH_SUITE(feed, "feed", "simulated GPU fed by real sandbox steps: synchronous vs pipelined rollout loop",
	    feed_main)
