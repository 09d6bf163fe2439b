/* End to end: librollout -> rolloutd -> rollout-pool, real processes on loopback. The
 * rollout path, errors, deadlines, a trainer that dies holding sandboxes, a pool killed with
 * requests in flight (each completes exactly once, as SANDBOX_LOST), a pool that comes back,
 * and exactly-once accounting of many pipelined requests. Needs root (the pool). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rollout/rollout.h"

static char bin[512], cfg[256], sock[128], group[64];
static int port;
static pid_t pool_pid = -1, rd_pid = -1;
static rollout_client *C;
static uint64_t next_id = 1;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pid_t spawn(const char *exe)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/%s", bin, exe);
	pid_t pid = fork();
	if (pid == 0) {
		execl(path, path, "--config", cfg, "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int sandbox_cgroups(void)
{
	char d[128];
	snprintf(d, sizeof(d), "/sys/fs/cgroup/pids/%s", group);
	DIR *dir = opendir(d);
	int n = 0;
	struct dirent *e;
	while (dir && (e = readdir(dir)))
		n += !strncmp(e->d_name, "sbx-", 4);
	if (dir)
		closedir(dir);
	return n;
}

/* Waits for the completion of request id; any other completion is a test failure unless
 * collected by the caller. */
static int wait_for(uint64_t id, struct rollout_completion *out, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int n = rollout_next(C, out);
		if (n < 0)
			return n;
		if (n == 1) {
			if (out->request_id == id)
				return 0;
			fail_msg("unexpected completion %llu while waiting for %llu",
				 (unsigned long long)out->request_id, (unsigned long long)id);
		}
		if (now_ns() > end)
			return -ETIMEDOUT;
		int rc = rollout_wait(C, 200);
		if (rc && rc != -ETIMEDOUT)
			return rc;
	}
}

static uint64_t open_sb(const char *profile)
{
	uint64_t id = next_id++;
	assert_int_equal(rollout_open(C, id, profile, 0), 0);
	rollout_flush(C);
	struct rollout_completion c;
	assert_int_equal(wait_for(id, &c, 20000), 0);
	if (c.status)
		fail_msg("open: %s (%s)", rollout_status_name(c.status), c.message ? c.message : "");
	return c.sandbox;
}

static struct rollout_completion sh(uint64_t sb, const char *cmd, uint64_t deadline)
{
	uint64_t id = next_id++;
	struct rollout_exec e = { .shell = cmd, .timeout_ms = 20000 };
	assert_int_equal(rollout_exec(C, id, sb, &e, deadline), 0);
	rollout_flush(C);
	struct rollout_completion c;
	assert_int_equal(wait_for(id, &c, 30000), 0);
	return c;
}

static void write_cfg(void)
{
	FILE *f = fopen(cfg, "w");
	assert_non_null(f);
	fprintf(
	    f,
	    "rolloutd:\n  socket: %s\n  metrics: 127.0.0.1:%d\n  heartbeat_ms: 200\n  pool_timeout_ms: 800\n"
	    "  lease_ms: 2000\n  ring_bytes: 65536\n  max_record: 16384\n  pools: [{endpoint: "
	    "tcp://127.0.0.1:%d}]\n"
	    "pool:\n  listen: tcp://127.0.0.1:%d\n  cgroup: %s\n  metrics: 127.0.0.1:%d\n  profiles:\n"
	    "    - {name: default, warm: 4, max: 64, memory_mb: 256, pids: 64}\n"
	    "    - {name: noop, type: noop, max: 100000}\n",
	    sock, port + 1, port, port, group, port + 2);
	fclose(f);
}

static int start_pool(void)
{
	pool_pid = spawn("pool/rollout-pool");
	return pool_pid > 0 ? 0 : -1;
}

/* Whether 127.0.0.1:port can be bound now (tests run in parallel, daemons of other tests
 * hold ports of their own). */
static bool port_free(int p)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)p),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_e2e: needs root (rollout-pool); skipping\n");
		exit(77);
	}
	const char *b = getenv("ROLLOUT_BINARY_DIR");
	snprintf(bin, sizeof(bin), "%s", b ? b : ".");
	int me = (int)getpid();
	port = 30000 + (me % 10000) * 3 % 30000;
	for (int i = 0; i < 200 && !(port_free(port) && port_free(port + 1) && port_free(port + 2)); i++)
		port = 30000 + (port - 30000 + 3 * 7919) % 30000;
	snprintf(cfg, sizeof(cfg), "/tmp/rollout-e2e-%d.yaml", me);
	snprintf(sock, sizeof(sock), "/tmp/rollout-e2e-%d.sock", me);
	snprintf(group, sizeof(group), "rollout-e2e-%d", me);
	write_cfg();
	start_pool();
	rd_pid = spawn("coordinator/rolloutd");
	struct rollout_connect_opts o = { .socket_path = sock, .gpu = -1, .name = "e2e" };
	for (int i = 0; i < 100; i++) {
		if (rollout_connect(&o, &C) == 0)
			break;
		usleep(50000);
	}
	if (!C)
		return -1;
	/* Ready when an open succeeds (the pool link is up). */
	for (int i = 0; i < 100; i++) {
		uint64_t id = next_id++;
		rollout_open(C, id, "noop", 0);
		rollout_flush(C);
		struct rollout_completion c;
		if (wait_for(id, &c, 5000) == 0 && c.status == 0)
			return 0;
		usleep(50000);
	}
	return -1;
}

static int teardown(void **state)
{
	(void)state;
	if (C)
		rollout_disconnect(C);
	int bad_exit = 0;
	if (rd_pid > 0) {
		/* SIGTERM drains and exits cleanly. */
		int st;
		kill(rd_pid, SIGTERM);
		waitpid(rd_pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "test_e2e: rolloutd did not exit cleanly on SIGTERM (status %d)\n",
				st);
			bad_exit = 1;
		}
	}
	if (pool_pid > 0) {
		kill(pool_pid, SIGTERM);
		waitpid(pool_pid, NULL, 0);
	}
	unlink(cfg);
	int left = sandbox_cgroups();
	return left || bad_exit ? -1 : 0;
}

static void test_rollout_path(void **state)
{
	(void)state;
	uint64_t sb = open_sb("default");
	uint64_t id = next_id++;
	assert_int_equal(rollout_put_file(C, id, sb, "in.txt", "3 4\n", 4, 0644), 0);
	rollout_flush(C);
	struct rollout_completion c;
	assert_int_equal(wait_for(id, &c, 5000), 0);
	assert_int_equal(c.status, 0);
	c = sh(sb, "read a b < in.txt; echo $((a*b)) > out.txt; cat out.txt; echo warn >&2; exit 5", 0);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.exit_code, 5);
	assert_int_equal(c.stdout_len, 3);
	assert_memory_equal(c.stdout_data, "12\n", 3);
	assert_memory_equal(c.stderr_data, "warn\n", 5);
	/* A step in a subdirectory of the work area (cwd), then one back at its top. */
	c = sh(sb, "mkdir -p sub/dir && echo here > sub/dir/f", 0);
	assert_int_equal(c.exit_code, 0);
	id = next_id++;
	assert_int_equal(
	    rollout_exec(C, id, sb, &(struct rollout_exec){ .shell = "cat f; pwd", .cwd = "sub/dir" }, 0), 0);
	rollout_flush(C);
	assert_int_equal(wait_for(id, &c, 10000), 0);
	if (c.status != 0 || c.exit_code != 0)
		fail_msg("exec in cwd sub/dir: status %d exit %d (%s)", c.status, c.exit_code,
			 c.message ? c.message : "");
	assert_int_equal(c.stdout_len, 5 + strlen("/tmp/sub/dir\n"));
	assert_memory_equal(c.stdout_data, "here\n/tmp/sub/dir\n", c.stdout_len);
	const char *argv[] = { "cat", NULL };
	struct rollout_exec e = { .argv = argv, .stdin_data = "piped", .stdin_len = 5 };
	id = next_id++;
	assert_int_equal(rollout_exec(C, id, sb, &e, 0), 0);
	rollout_flush(C);
	assert_int_equal(wait_for(id, &c, 10000), 0);
	assert_memory_equal(c.stdout_data, "piped", 5);
	id = next_id++;
	assert_int_equal(rollout_get_file(C, id, sb, "out.txt", 0), 0);
	rollout_flush(C);
	assert_int_equal(wait_for(id, &c, 5000), 0);
	assert_int_equal(c.file_len, 3);
	id = next_id++;
	assert_int_equal(rollout_close(C, id, sb), 0);
	rollout_flush(C);
	assert_int_equal(wait_for(id, &c, 5000), 0);
	assert_int_equal(c.status, 0);
	/* After close: NOT_FOUND, decided by rolloutd. */
	c = sh(sb, "true", 0);
	assert_int_equal(c.status, 5 /* NOT_FOUND */);
	/* Unknown profile. */
	id = next_id++;
	assert_int_equal(rollout_open(C, id, "no-such-profile", 0), 0);
	rollout_flush(C);
	assert_int_equal(wait_for(id, &c, 5000), 0);
	assert_int_equal(c.status, 11 /* UNKNOWN_PROFILE */);
}

static void test_deadline(void **state)
{
	(void)state;
	uint64_t sb = open_sb("default");
	uint64_t t0 = now_ns();
	struct rollout_completion c = sh(sb, "sleep 20", now_ns() + 300000000ull);
	assert_int_equal(c.status, 1 /* TIMEOUT */);
	assert_false(c.infra_failed);
	assert_true(now_ns() - t0 < 1500000000ull);
	/* The pool cancelled the action: the sandbox is gone with it. */
	c = sh(sb, "true", 0);
	assert_true(c.status == 5 || c.status == 2);
}

/* A trainer killed while holding sandboxes: they are closed at the pool within a second or two. */
static bool cgroup_exists(uint64_t sandbox)
{
	char d[160];
	snprintf(d, sizeof(d), "/sys/fs/cgroup/pids/%s/sbx-%llu", group, (unsigned long long)sandbox);
	struct stat st;
	return stat(d, &st) == 0;
}

static void test_trainer_death(void **state)
{
	(void)state;
	int ids[2];
	assert_int_equal(pipe(ids), 0);
	pid_t child = fork();
	if (child == 0) {
		struct rollout_connect_opts o = { .socket_path = sock, .gpu = -1, .name = "doomed" };
		rollout_client *c2;
		if (rollout_connect(&o, &c2))
			_exit(1);
		for (int i = 0; i < 3; i++)
			rollout_open(c2, (uint64_t)i, "default", 0);
		rollout_flush(c2);
		int got = 0;
		while (got < 3) {
			struct rollout_completion cp;
			int n = rollout_next(c2, &cp);
			if (n == 1 && cp.status == 0) {
				got++;
				if (write(ids[1], &cp.sandbox, 8) != 8)
					_exit(3);
			} else if (n == 0 && rollout_wait(c2, 10000)) {
				_exit(2);
			}
		}
		/* One more request left half-built in the ring, then death. */
		rollout_exec(c2, 99, 1, &(struct rollout_exec){ .shell = "true" }, 0);
		kill(getpid(), SIGKILL);
	}
	close(ids[1]);
	uint64_t held[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(read(ids[0], &held[i], 8), 8);
	close(ids[0]);
	for (int i = 0; i < 3; i++)
		assert_true(cgroup_exists(held[i]));
	int st;
	waitpid(child, &st, 0);
	uint64_t t0 = now_ns();
	assert_true(WIFSIGNALED(st));
	/* The three sandboxes it held are gone from the pool within a second. */
	while ((cgroup_exists(held[0]) || cgroup_exists(held[1]) || cgroup_exists(held[2])) &&
	       now_ns() - t0 < 3000000000ull)
		usleep(10000);
	uint64_t gone = now_ns() - t0;
	print_message("dead trainer's sandboxes gone after %.0f ms\n", (double)gone / 1e6);
	for (int i = 0; i < 3; i++)
		assert_false(cgroup_exists(held[i]));
	assert_true(gone < 1000000000ull);
	/* rolloutd still serves us. */
	struct rollout_completion c = sh(open_sb("noop"), "true", 0);
	assert_int_equal(c.status, 0);
}

/* A slow pool (real commands on a few sandboxes) and a trainer that submits far more than
 * can run: the trainer sees backpressure, nothing is dropped, rolloutd's memory stays flat. */
static long rss_kib(pid_t pid)
{
	char p[64], line[256];
	snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void test_slow_pool_backpressure(void **state)
{
	(void)state;
	enum { BOXES = 4, N = 1500 };
	uint64_t sb[BOXES];
	for (int i = 0; i < BOXES; i++)
		sb[i] = open_sb("default");
	long rss0 = rss_kib(rd_pid), rss_max = rss0;
	uint64_t base = next_id;
	next_id += N;
	static unsigned count[N];
	memset(count, 0, sizeof(count));
	int sent = 0, got = 0, full = 0;
	uint64_t give_up = now_ns() + 120000000000ull;
	/* Each request carries 8 KiB of stdin so the 64 KiB ring fills after a few. */
	static char pad[8192];
	memset(pad, 'x', sizeof(pad));
	while (got < N) {
		assert_true(now_ns() < give_up);
		while (sent < N) {
			struct rollout_exec e = { .shell = "cat > /dev/null",
						  .stdin_data = pad,
						  .stdin_len = sizeof(pad) };
			int rc = rollout_exec(C, base + (uint64_t)sent, sb[sent % BOXES], &e, 0);
			if (rc == -EAGAIN) {
				full++;
				break;
			}
			assert_int_equal(rc, 0);
			sent++;
		}
		rollout_flush(C);
		struct rollout_completion c;
		while (rollout_next(C, &c) == 1) {
			uint64_t k = c.request_id - base;
			assert_true(k < N);
			assert_int_equal(c.status, 0);
			count[k]++;
			got++;
		}
		long r = rss_kib(rd_pid);
		if (r > rss_max)
			rss_max = r;
		if (got < sent)
			rollout_wait(C, 1000);
	}
	for (int k = 0; k < N; k++)
		assert_int_equal(count[k], 1);
	print_message("slow pool: %d requests, ring full %d times, rolloutd RSS %ld -> max %ld KiB\n", N,
		      full, rss0, rss_max);
	assert_true(full > 0);
	assert_true(rss_max - rss0 < 32 * 1024);
	for (int i = 0; i < BOXES; i++) {
		uint64_t id = next_id++;
		rollout_close(C, id, sb[i]);
		rollout_flush(C);
		struct rollout_completion c;
		assert_int_equal(wait_for(id, &c, 10000), 0);
	}
}

/* Many requests in flight, a pool killed: every one completes exactly once. Then the pool
 * comes back and is used again. */
static void test_pool_death_exactly_once(void **state)
{
	(void)state;
	enum { N = 12 };
	uint64_t sbs[N], ids[N];
	for (int i = 0; i < N; i++)
		sbs[i] = open_sb("default");
	for (int i = 0; i < N; i++) {
		ids[i] = next_id++;
		assert_int_equal(
		    rollout_exec(C, ids[i], sbs[i], &(struct rollout_exec){ .shell = "sleep 30" }, 0), 0);
	}
	rollout_flush(C);
	usleep(300000);
	kill(pool_pid, SIGKILL);
	waitpid(pool_pid, NULL, 0);
	int seen[N] = { 0 };
	int got = 0;
	uint64_t end = now_ns() + 5000000000ull;
	while (now_ns() < end && got < N) {
		struct rollout_completion c;
		int n = rollout_next(C, &c);
		if (n == 1) {
			for (int i = 0; i < N; i++)
				if (ids[i] == c.request_id) {
					seen[i]++;
					got++;
					assert_int_equal(c.status, 2 /* SANDBOX_LOST */);
					assert_true(c.infra_failed);
				}
		} else {
			rollout_wait(C, 100);
		}
	}
	assert_int_equal(got, N);
	/* Nothing more arrives: no duplicates. */
	struct rollout_completion c;
	rollout_wait(C, 500);
	assert_int_equal(rollout_next(C, &c), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(seen[i], 1);
	/* Their sandboxes are gone with the pool: later steps say so. */
	c = sh(sbs[0], "true", 0);
	assert_true(c.status == 5 || c.status == 2 || c.status == 15);
	/* The pool comes back and is used for new sandboxes. */
	start_pool();
	uint64_t t0 = now_ns();
	for (;;) {
		uint64_t id = next_id++;
		assert_int_equal(rollout_open(C, id, "noop", 0), 0);
		rollout_flush(C);
		assert_int_equal(wait_for(id, &c, 5000), 0);
		if (c.status == 0)
			break;
		assert_true(now_ns() - t0 < 10000000000ull);
		usleep(100000);
	}
	/* Nothing of the lost steps was re-run on the new pool: it has seen no exec yet. */
	char cmd[512];
	snprintf(
	    cmd, sizeof(cmd),
	    "/usr/bin/python3 -c 'import urllib.request as u; "
	    "t=u.urlopen(\"http://127.0.0.1:%d/metrics\").read().decode(); "
	    "import sys; sys.exit(0 if \"rollout_pool_requests_total{action=\\\"Exec\\\"} 0\" in t else 1)'",
	    port + 2);
	assert_int_equal(system(cmd), 0);
	c = sh(open_sb("default"), "echo back", 0);
	assert_int_equal(c.status, 0);
}

/* Pipelined no-op steps: every request id completes exactly once. */
static void test_exactly_once_many(void **state)
{
	(void)state;
	enum { TRAJ = 200, STEPS = 20 };
	static uint64_t sbs[TRAJ];
	static unsigned count[TRAJ * (STEPS + 1)];
	memset(count, 0, sizeof(count));
	for (int i = 0; i < TRAJ; i++)
		sbs[i] = open_sb("noop");
	uint64_t base = next_id;
	next_id += TRAJ * (STEPS + 1);
	int sent = 0, got = 0, full = 0;
	uint64_t give_up = now_ns() + 60000000000ull;
	while (got < TRAJ * STEPS) {
		if (now_ns() > give_up)
			fail_msg("only %d of %d completions after 60 s (%d sent)", got, TRAJ * STEPS, sent);
		while (sent < TRAJ * STEPS) {
			int i = sent % TRAJ;
			int rc = rollout_exec(C, base + (uint64_t)sent, sbs[i],
					      &(struct rollout_exec){ .shell = "true" }, 0);
			if (rc == -EAGAIN) {
				full++; /* backpressure: the 64 KiB ring is full, nothing is dropped */
				break;
			}
			assert_int_equal(rc, 0);
			sent++;
		}
		rollout_flush(C);
		struct rollout_completion c;
		int n;
		while ((n = rollout_next(C, &c)) == 1) {
			uint64_t k = c.request_id - base;
			assert_true(k < (uint64_t)TRAJ * STEPS);
			assert_int_equal(c.status, 0);
			count[k]++;
			got++;
		}
		assert_true(n >= 0);
		if (got < sent)
			rollout_wait(C, 1000);
	}
	for (int k = 0; k < TRAJ * STEPS; k++)
		assert_int_equal(count[k], 1);
	print_message("4000 steps through a 64 KiB ring: the ring was full %d times\n", full);
	assert_true(full > 0);
}

static void test_metrics(void **state)
{
	(void)state;
	char cmd[512];
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import urllib.request,sys; "
		 "sys.stdout.write(urllib.request.urlopen(\"http://127.0.0.1:%d/metrics\").read().decode())' "
		 "> /tmp/rd-metrics-%d.txt",
		 port + 1, (int)getpid());
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "grep -q 'rolloutd_completions_total{action=\"Exec\",status=\"OK\"} [1-9]' "
		 "/tmp/rd-metrics-%d.txt",
		 (int)getpid());
	assert_int_equal(system(cmd), 0);
	/* promtool comes with `make test` (Debian's prometheus): missing, it is a failure. */
	if (system("command -v promtool >/dev/null") != 0)
		fail_msg("promtool not installed (Debian package prometheus; scripts/bootstrap installs it)");
	snprintf(cmd, sizeof(cmd), "promtool check metrics < /tmp/rd-metrics-%d.txt", (int)getpid());
	assert_int_equal(system(cmd), 0);
	/* Histogram and counter invariants, on rolloutd's endpoint and on the pool's, scraped
	 * again and again while noop steps flow (counters are checked under load). */
	const char *src = getenv("ROLLOUT_SOURCE_DIR");
	FILE *checks[2];
	for (int k = 1; k <= 2; k++) {
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 %s/tests/e2e/check_metrics.py http://127.0.0.1:%d/metrics "
			 "--seconds 2 --busy",
			 src ? src : ".", port + k);
		checks[k - 1] = popen(cmd, "r");
		assert_non_null(checks[k - 1]);
	}
	uint64_t sb = open_sb("noop"), end = now_ns() + 2500000000ull;
	while (now_ns() < end) {
		struct rollout_completion c;
		uint64_t id = next_id++;
		assert_int_equal(rollout_exec(C, id, sb, &(struct rollout_exec){ .shell = "true" }, 0), 0);
		rollout_flush(C);
		assert_int_equal(wait_for(id, &c, 5000), 0);
	}
	for (int k = 0; k < 2; k++) {
		char line[512];
		while (fgets(line, sizeof(line), checks[k]))
			print_message("check_metrics: %s", line);
		assert_int_equal(pclose(checks[k]), 0);
	}
	snprintf(cmd, sizeof(cmd), "/tmp/rd-metrics-%d.txt", (int)getpid());
	unlink(cmd);
}

/* rolloutd killed: the trainer's pending calls end with a clear error within a second. */
static void test_rolloutd_death(void **state)
{
	(void)state;
	uint64_t sb = open_sb("default");
	uint64_t id = next_id++;
	assert_int_equal(rollout_exec(C, id, sb, &(struct rollout_exec){ .shell = "sleep 30" }, 0), 0);
	rollout_flush(C);
	usleep(200000);
	kill(rd_pid, SIGKILL);
	waitpid(rd_pid, NULL, 0);
	rd_pid = -1;
	uint64_t t0 = now_ns();
	int rc = rollout_wait(C, 10000);
	assert_true(rc == ROLLOUT_E_PEER_DEAD || rc == ROLLOUT_E_SHUTDOWN);
	assert_true(now_ns() - t0 < 1000000000ull);
	struct rollout_completion c;
	assert_int_equal(rollout_next(C, &c), 0);
	print_message("rolloutd death noticed after %.0f ms: %s\n", (double)(now_ns() - t0) / 1e6,
		      rollout_strerror(rc));
	/* A new rolloutd (new epoch) serves a new connection; the pool reaps the old one's
	 * sandboxes when its lease runs out. */
	rd_pid = spawn("coordinator/rolloutd");
	rollout_disconnect(C);
	C = NULL;
	struct rollout_connect_opts o = { .socket_path = sock, .gpu = -1, .name = "e2e-again" };
	for (int i = 0; i < 100 && !C; i++)
		if (rollout_connect(&o, &C))
			usleep(50000);
	assert_non_null(C);
	for (int i = 0; i < 100; i++) {
		id = next_id++;
		rollout_open(C, id, "noop", 0);
		rollout_flush(C);
		if (wait_for(id, &c, 5000) == 0 && c.status == 0)
			break;
		usleep(50000);
	}
	assert_int_equal(c.status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollout_path),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_trainer_death),
		cmocka_unit_test(test_exactly_once_many),
		cmocka_unit_test(test_slow_pool_backpressure),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_pool_death_exactly_once),
		cmocka_unit_test(test_rolloutd_death),
	};
	return cmocka_run_group_tests_name("e2e", tests, setup, teardown);
}
