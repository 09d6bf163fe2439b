/* rollout-bench transfer: big files and streamed output end to end. A trainer (this
 * process, librollout) -> rolloutd -> rollout-pool -> a sandbox, both daemons started
 * here with a profile of their own. Measured in the same run: put_file and get_file of
 * 32 MiB (records over max_record travel in pieces), a plain memcpy of 32 MiB, and the
 * copy a container user would otherwise make, tar through a pipe (what `docker cp` does);
 * and how long the first streamed chunk of a command that prints and then sleeps takes
 * to reach the trainer after the command wrote it. Needs root (the pool). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "rollout/rollout.h"

#define SIZE           (32u << 20)
#define MBS(bytes, ns) ((double)(bytes) / 1e6 / ((double)(ns) / 1e9))

/* Waits for the completion of request id (streamed records skipped); 0 and *out, or < 0. */
static int wait_for(rollout_client *c, uint64_t id, struct rollout_completion *out)
{
	rollout_flush(c);
	for (;;) {
		int n;
		while ((n = rollout_next(c, out)) == 1)
			if (out->request_id == id && !out->partial)
				return 0;
		if (n < 0)
			return n;
		int rc = rollout_wait(c, 30000);
		if (rc)
			return rc;
	}
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The first streamed chunk of `date +%s%N; sleep 0.2`: ns from the write (the sandbox's
 * clock is the host's) to the chunk being read here. */
static int first_chunk(rollout_client *c, uint64_t sandbox, uint64_t id, double *ms)
{
	static const char *const argv[] = { "/bin/sh", "-c", "date +%s%N; sleep 0.2", NULL };
	struct rollout_exec e = { .argv = argv, .flags = ROLLOUT_EXEC_STREAM };
	int rc = rollout_exec(c, id, sandbox, &e, 0);
	if (rc)
		return rc;
	rollout_flush(c);
	*ms = -1;
	for (;;) {
		struct rollout_completion k;
		int n;
		while ((n = rollout_next(c, &k)) == 1) {
			if (k.request_id != id)
				continue;
			if (k.partial && *ms < 0 && k.stdout_len) {
				uint64_t now = realtime_ns();
				char buf[32] = { 0 };
				memcpy(buf, k.stdout_data, k.stdout_len < 31 ? k.stdout_len : 31);
				*ms = (double)(now - strtoull(buf, NULL, 10)) / 1e6;
			}
			if (!k.partial)
				return k.status || *ms < 0 ? -EIO : 0;
		}
		if (n < 0)
			return n;
		if ((rc = rollout_wait(c, 30000)))
			return rc;
	}
}

/* tar of one 32 MiB file through a pipe into another directory, as `docker cp` copies. */
static int tar_pipe(const char *dir, uint64_t *ns)
{
	char cmd[PATH_MAX * 3];
	snprintf(cmd, sizeof(cmd),
		 "rm -rf %s/dst && mkdir -p %s/dst && tar -C %s/src -cf - big | tar -C %s/dst -xf -", dir,
		 dir, dir, dir);
	uint64_t t = bench_now_ns();
	int rc = system(cmd);
	*ns = bench_now_ns() - t;
	return rc;
}

static int run(int argc, char **argv)
{
	int runs = 5, chunks = 20;
	bool json = false;
	/* The daemons next to this binary (BUILD/bench/rollout-bench), unless --build-dir. */
	char dir[PATH_MAX - 64];
	bench_build_dir(dir, sizeof(dir));
	static const struct option lo[] = { { "json", no_argument, NULL, 'j' },
					    { "runs", required_argument, NULL, 'r' },
					    { "build-dir", required_argument, NULL, 'b' },
					    { "help", no_argument, NULL, 'h' },
					    { 0 } };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "jr:b:h", lo, NULL)) != -1) {
		if (ch == 'j')
			json = true;
		else if (ch == 'r')
			runs = atoi(optarg);
		else if (ch == 'b')
			snprintf(dir, sizeof(dir), "%s", optarg);
		else {
			printf(
			    "usage: rollout-bench transfer [--json] [--runs N] [--build-dir DIR]\n"
			    "put_file and get_file of 32 MiB through rolloutd and a pool sandbox, against\n"
			    "memcpy and tar through a pipe; first streamed chunk latency. Needs root.\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	if (runs < 1 || runs > 1000) {
		fprintf(stderr, "rollout-bench transfer: --runs 1..1000\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "rollout-bench transfer: needs root (rollout-pool)\n");
		return 77;
	}
	int me = (int)getpid(), port = 40000 + (me * 3) % 20000;
	char cfg[128], sock[128], tmp[128], pool_exe[PATH_MAX], rd_exe[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "/tmp/rollout-bench-transfer-%d.yaml", me);
	snprintf(sock, sizeof(sock), "/tmp/rollout-bench-transfer-%d.sock", me);
	snprintf(tmp, sizeof(tmp), "/tmp/rollout-bench-transfer-%d", me);
	snprintf(pool_exe, sizeof(pool_exe), "%s/pool/rollout-pool", dir);
	snprintf(rd_exe, sizeof(rd_exe), "%s/coordinator/rolloutd", dir);
	FILE *f = fopen(cfg, "w");
	if (!f)
		return 1;
	fprintf(f,
		"rolloutd:\n  socket: %s\n  pools: [{endpoint: tcp://127.0.0.1:%d}]\n"
		"pool:\n  listen: tcp://127.0.0.1:%d\n  cgroup: rollout-bench-transfer-%d\n"
		"  profiles: [{name: default, warm: 1, max: 4, memory_mb: 512, workdir_mb: 96, pids: 64}]\n",
		sock, port, port, me);
	fclose(f);
	pid_t pool = bench_spawn_daemon(pool_exe, cfg), rd = bench_spawn_daemon(rd_exe, cfg);
	uint8_t *data = malloc(SIZE), *copy = malloc(SIZE);
	double *put = calloc((size_t)runs, 8), *get = calloc((size_t)runs, 8), *mc = calloc((size_t)runs, 8),
	       *tar = calloc((size_t)runs, 8), *lat = calloc((size_t)chunks, 8);
	rollout_client *c = NULL;
	int rc = data && copy && put && get && mc && tar && lat ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < SIZE; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	/* tar's input: the same bytes in a file. */
	char path[256];
	snprintf(path, sizeof(path), "%s/src", tmp);
	mkdir(tmp, 0700);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/src/big", tmp);
	if (!rc && (!(f = fopen(path, "w")) || fwrite(data, 1, SIZE, f) != SIZE || fclose(f)))
		rc = -EIO;
	struct rollout_connect_opts co = { .socket_path = sock, .gpu = -1, .name = "bench-transfer" };
	uint64_t sandbox = 0, id = 1;
	struct rollout_completion k;
	/* The sandbox; retried until both daemons are up and linked. */
	for (int tries = 0; !rc && !sandbox; tries++) {
		if (!c && rollout_connect(&co, &c))
			c = NULL;
		if (c && rollout_open(c, id, "default", 0) == 0 && wait_for(c, id, &k) == 0 && k.status == 0)
			sandbox = k.sandbox;
		id++;
		if (!sandbox && tries > 200)
			rc = -ETIMEDOUT;
		else if (!sandbox)
			usleep(50000);
	}
	bench_note("transfer: %d runs of put, get (32 MiB each), memcpy and tar | tar", runs);
	for (int i = 0; !rc && i < runs; i++) {
		uint64_t t = bench_now_ns();
		if ((rc = rollout_put_file(c, id, sandbox, "big", data, SIZE, 0644)) ||
		    (rc = wait_for(c, id, &k)) || (rc = k.status ? -EIO : 0)) {
			fprintf(stderr, "rollout-bench transfer: put: %s %s\n", rollout_status_name(k.status),
				k.message ? k.message : "");
			break;
		}
		put[i] = MBS(SIZE, bench_now_ns() - t);
		id++;
		t = bench_now_ns();
		if ((rc = rollout_get_file(c, id, sandbox, "big", 0)) || (rc = wait_for(c, id, &k)) ||
		    (rc = k.status || k.file_len != SIZE || memcmp(k.file_data, data, SIZE) ? -EIO : 0)) {
			fprintf(stderr, "rollout-bench transfer: get: %s %s (%zu bytes)\n",
				rollout_status_name(k.status), k.message ? k.message : "", k.file_len);
			break;
		}
		get[i] = MBS(SIZE, bench_now_ns() - t);
		id++;
		t = bench_now_ns();
		memcpy(copy, data, SIZE);
		__asm__ volatile("" : : "r"(copy) : "memory");
		mc[i] = MBS(SIZE, bench_now_ns() - t);
		uint64_t ns;
		if (tar_pipe(tmp, &ns)) {
			fprintf(stderr, "rollout-bench transfer: tar | tar failed\n");
			rc = -EIO;
			break;
		}
		tar[i] = MBS(SIZE, ns);
		bench_note("run %d/%d: put %.0f MB/s, get %.0f MB/s, memcpy %.0f MB/s, tar|tar %.0f MB/s",
			   i + 1, runs, put[i], get[i], mc[i], tar[i]);
	}
	for (int i = 0; !rc && i < chunks; i++, id++)
		if ((rc = first_chunk(c, sandbox, id, &lat[i])))
			fprintf(stderr, "rollout-bench transfer: streamed exec failed\n");
	if (c)
		rollout_disconnect(c);
	kill(rd, SIGTERM);
	kill(pool, SIGTERM);
	waitpid(rd, NULL, 0);
	waitpid(pool, NULL, 0);
	unlink(cfg);
	char rm[256];
	snprintf(rm, sizeof(rm), "rm -rf %s", tmp);
	if (system(rm)) {
	}
	if (rc) {
		fprintf(stderr, "rollout-bench transfer: failed: %s\n", rollout_strerror(rc));
		return 1;
	}
	size_t n = (size_t)runs;
	double p = bench_quantile(put, n, 0.5), g = bench_quantile(get, n, 0.5),
	       m = bench_quantile(mc, n, 0.5), tp = bench_quantile(tar, n, 0.5),
	       l50 = bench_quantile(lat, (size_t)chunks, 0.5),
	       l99 = bench_quantile(lat, (size_t)chunks, 0.99);
	bench_note("medians: put %.0f MB/s, get %.0f MB/s, memcpy %.0f MB/s, tar|tar %.0f MB/s; first "
		   "streamed chunk p50 %.2f ms, max %.2f ms",
		   p, g, m, tp, l50, l99);
	if (json) {
		bench_json_begin();
		bench_json_str("suite", "transfer");
		bench_json_int("runs", runs);
		bench_json_num("put_32m_mb_per_s", p);
		bench_json_num("get_32m_mb_per_s", g);
		bench_json_num("memcpy_mb_per_s", m);
		bench_json_num("tar_pipe_mb_per_s", tp);
		bench_json_num("put_over_tar", p / tp);
		bench_json_num("get_over_tar", g / tp);
		bench_json_num("first_chunk_p50_ms", l50);
		bench_json_num("first_chunk_max_ms", l99);
		bench_json_bool("put_get_target_met", p >= 500 && g >= 500);
		bench_json_bool("first_chunk_target_met", l50 <= 5);
		bench_json_end();
	}
	return 0;
}

BENCH_SUITE(transfer, "transfer", "32 MiB put/get vs memcpy and tar|tar; first streamed chunk", run)
