/* rollout-pool under the faults of issue 10: each test starts its own rollout-pool (root:
 * namespaces, cgroups; exits 77 otherwise) with the configuration the fault needs, drives
 * it over ZeroMQ with the pool client, and checks that the pool keeps its promises: every
 * answer delivered, no stall behind one slow sandbox or a burst of opens, a failing zygote
 * seen by the service manager, secrets out of the sandboxes' reach, logs that cannot be
 * forged, a bounded peer table and metrics endpoint. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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
#include <zmq.h>

#include "client.h"
#include "rollout_wire.h"

static char pool_bin[512];
static int seq;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One pool of a test: its config, endpoint, cgroup and process. */
struct aux {
	char cfg[256], ep[64], grp[64], log[256];
	int port;
	pid_t pid;
};

/* Copies of the pools the running test started, stopped by teardown when the test
 * failed (its own struct aux lived on the stack the failure unwound). */
static struct aux live[4];

static void aux_stop(struct aux *a);

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		if (live[i].pid > 0) {
			struct aux copy = live[i];
			aux_stop(&copy);
		}
	return 0;
}

static void aux_config(struct aux *a, const char *dir, const char *pool_keys, const char *profiles)
{
	seq++;
	a->port = 20000 + (int)((getpid() * 7 + seq * 101) % 40000);
	snprintf(a->cfg, sizeof(a->cfg), "%s/rollout-faults-%d-%d.yaml", dir, (int)getpid(), seq);
	snprintf(a->ep, sizeof(a->ep), "tcp://127.0.0.1:%d", a->port);
	snprintf(a->grp, sizeof(a->grp), "rollout-faults-%d-%d", (int)getpid(), seq);
	snprintf(a->log, sizeof(a->log), "/tmp/rollout-faults-%d-%d.log", (int)getpid(), seq);
	FILE *f = fopen(a->cfg, "w");
	assert_non_null(f);
	fprintf(
	    f, "pool:\n  listen: %s\n  cgroup: %s\n%s  profiles:\n%s", a->ep, a->grp,
	    pool_keys ? pool_keys : "",
	    profiles
		? profiles
		: "    - {name: default, warm: 2, max: 16, memory_mb: 128, pids: 64, timeout_ms: 10000}\n");
	fclose(f);
}

/* Starts the pool (stderr into a->log) and waits until it answers a hello. */
static void aux_start(struct aux *a)
{
	a->pid = fork();
	if (a->pid == 0) {
		int fd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execl(pool_bin, pool_bin, "--config", a->cfg, "--log-level", "info", (char *)NULL);
		_exit(127);
	}
	assert_true(a->pid > 0);
	for (int i = 0; i < 4; i++)
		if (live[i].pid <= 0) {
			live[i] = *a;
			break;
		}
	uint64_t end = now_ms() + 10000;
	while (now_ms() < end) {
		struct pc c;
		int rc = pc_connect(&c, a->ep, "probe", 1000);
		pc_close(&c);
		if (rc == 0)
			return;
		int st;
		if (waitpid(a->pid, &st, WNOHANG) == a->pid)
			fail_msg("pool exited at start (status %d), see %s", st, a->log);
		usleep(20000);
	}
	fail_msg("pool did not answer within 10 s");
}

/* Waits up to ms for the pool to exit; its wait status, or -1. */
static int aux_wait(struct aux *a, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	int st;
	do {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			for (int i = 0; i < 4; i++)
				if (live[i].pid == a->pid)
					live[i].pid = 0;
			a->pid = 0;
			return st;
		}
		usleep(20000);
	} while (now_ms() < end);
	return -1;
}

static void aux_stop(struct aux *a)
{
	for (int i = 0; i < 4; i++)
		if (live[i].pid > 0 && strcmp(live[i].cfg, a->cfg) == 0)
			live[i].pid = 0;
	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		if (aux_wait(a, 15000) < 0) {
			kill(a->pid, SIGKILL);
			waitpid(a->pid, NULL, 0);
		}
	}
	a->pid = 0;
	unlink(a->cfg);
	unlink(a->log);
	const char *ctl[] = { "pids", "memory", "cpu" };
	for (int i = 0; i < 3; i++) {
		char d[160];
		snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s", ctl[i], a->grp);
		rmdir(d);
	}
}

/* Host pids in a sandbox's cgroup (v1 pids controller, or v2). */
static int sandbox_pids(const struct aux *a, uint64_t id, int *pids, int max)
{
	char p[256], line[64];
	snprintf(p, sizeof(p), "/sys/fs/cgroup/pids/%s/sbx-%llu/cgroup.procs", a->grp,
		 (unsigned long long)id);
	FILE *f = fopen(p, "r");
	if (!f) {
		snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/sbx-%llu/cgroup.procs", a->grp,
			 (unsigned long long)id);
		f = fopen(p, "r");
	}
	int n = 0;
	while (f && n < max && fgets(line, sizeof(line), f))
		pids[n++] = atoi(line);
	if (f)
		fclose(f);
	return n;
}

/* The pid of a child of `parent` whose name is comm, or -1. */
static int child_named(pid_t parent, const char *comm)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int found = -1;
	while (d && (e = readdir(d)) && found < 0) {
		char p[300], buf[512];
		snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		char *r = strrchr(buf, ')');
		char *l = strchr(buf, '(');
		if (!r || !l)
			continue;
		int ppid = 0;
		char state;
		if (sscanf(r + 2, "%c %d", &state, &ppid) == 2 && ppid == parent &&
		    (size_t)(r - l - 1) == strlen(comm) && strncmp(l + 1, comm, strlen(comm)) == 0)
			found = atoi(e->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

static uint64_t open_box(struct pc *c)
{
	struct pc_result r;
	assert_int_equal(pc_open(c, "default", &r, 10000), 0);
	if (r.status != 0)
		fail_msg("open: status %d (%s)", r.status, r.message ? r.message : "");
	return r.sandbox;
}

static bool out_has(const struct pc_result *r, const char *s)
{
	return memmem(r->out, r->out_len, s, strlen(s)) || memmem(r->err, r->err_len, s, strlen(s));
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* ---- 7: an answer is never dropped while its coordinator keeps its lease ---- */

static void test_answer_waits_for_reconnect(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL, NULL);
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect_as(&c, a.ep, "keeper", 10000, "coordinator-7", true), 0);
	uint64_t b = open_box(&c);
	assert_int_equal(pc_send_exec(&c, 7001, b, "sleep 1; echo kept", 5000), 0);
	usleep(100000);
	pc_close(&c); /* the coordinator's connection drops while the action runs */
	usleep(1500000);
	/* It comes back with the same routing id and says anything: the answer arrives
	 * without being asked for again. */
	assert_int_equal(pc_connect_as(&c, a.ep, "keeper", 10000, "coordinator-7", false), 0);
	struct pc_result r;
	assert_int_equal(pc_wait(&c, 7001, &r, 3000), 0);
	assert_int_equal(r.status, 0);
	assert_true(out_has(&r, "kept"));
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 8: one long action does not keep every cached answer alive ---- */

static void test_cache_expires_past_running(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", "  result_cache_s: 1\n", NULL);
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "cache", 10000), 0);
	uint64_t slow = open_box(&c), quick = open_box(&c);
	assert_int_equal(pc_send_exec(&c, 8001, slow, "sleep 4", 8000), 0); /* cached first, running */
	usleep(50000);
	struct pc_result r;
	assert_int_equal(pc_send_exec(&c, 8002, quick, "echo x >> runs; wc -l < runs", 5000), 0);
	assert_int_equal(pc_wait(&c, 8002, &r, 5000), 0);
	assert_true(out_has(&r, "1"));
	/* Past the TTL, the quick answer is gone although the slow one still runs: the same
	 * dispatch id is a new request now and runs again. */
	usleep(2000000);
	assert_int_equal(pc_send_exec(&c, 8002, quick, "echo x >> runs; wc -l < runs", 5000), 0);
	assert_int_equal(pc_wait(&c, 8002, &r, 5000), 0);
	assert_true(out_has(&r, "2"));
	assert_int_equal(pc_wait(&c, 8001, &r, 8000), 0);
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 9: a sandbox that does not read stalls nobody else ---- */

static void test_slow_sandbox_does_not_stall(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL,
		   "    - {name: default, warm: 2, max: 16, memory_mb: 256, file_mb: 16, workdir_mb: 32}\n");
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "slow", 10000), 0);
	uint64_t stuck = open_box(&c), other = open_box(&c);
	int pids[8];
	assert_int_equal(sandbox_pids(&a, stuck, pids, 8), 1); /* its init alone */
	assert_int_equal(kill(pids[0], SIGSTOP), 0);
	size_t len = 8u << 20;
	char *data = malloc(len);
	memset(data, 'x', len);
	assert_int_equal(pc_send_put(&c, 9001, stuck, "big", data, len), 0);
	free(data);
	usleep(300000);
	uint64_t t0 = now_ms();
	struct pc_result r;
	/* Blocked behind the stopped sandbox, this would wait until SIGCONT; served, it takes
	 * milliseconds (a loaded 2-core CI box: well under a second). */
	assert_int_equal(pc_exec(&c, other, "echo quick", NULL, NULL, 0, 5000, 0, &r, 6000), 0);
	uint64_t took = now_ms() - t0;
	kill(pids[0], SIGCONT);
	assert_true(out_has(&r, "quick"));
	print_message("exec beside a stopped sandbox: %llu ms\n", (unsigned long long)took);
	assert_true(took < 2500);
	assert_int_equal(pc_wait(&c, 9001, &r, 10000), 0);
	assert_int_equal(r.status, 0);
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 10: a dead zygote is a failure a service manager sees ---- */

static void test_zygote_death_exits_1(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL, NULL);
	aux_start(&a);
	int zy = child_named(a.pid, "rollout-zygote");
	assert_true(zy > 0);
	assert_int_equal(kill(zy, SIGKILL), 0);
	int st = aux_wait(&a, 10000);
	assert_true(st >= 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	aux_stop(&a);
}

/* ---- 12: a creation the zygote never answers fails, and the profile keeps refilling ---- */

static void test_lost_creation_times_out(void **state)
{
	(void)state;
	struct aux a;
	/* ROLLOUT_TEST_OLD_POOL: a binary from before the key existed; its default (10 s) */
	bool old = getenv("ROLLOUT_TEST_OLD_POOL") != NULL;
	aux_config(&a, "/tmp", old ? "" : "  create_timeout_ms: 1000\n",
		   "    - {name: default, warm: 0, max: 4, memory_mb: 128}\n");
	aux_start(&a);
	int zy = child_named(a.pid, "rollout-zygote");
	assert_true(zy > 0);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "lost", 10000), 0);
	assert_int_equal(kill(zy, SIGSTOP), 0); /* its answers never come in time */
	struct pc_result r;
	uint64_t t0 = now_ms();
	assert_int_equal(pc_open(&c, "default", &r, old ? 15000 : 5000), 0);
	assert_int_equal(r.status, rw_Status_INTERNAL);
	assert_true(r.infra);
	assert_true(now_ms() - t0 < (old ? 13000 : 3000));
	kill(zy, SIGCONT);
	/* After the back-off the profile creates again and serves. */
	usleep(300000);
	assert_int_equal(pc_open(&c, "default", &r, 10000), 0);
	assert_int_equal(r.status, 0);
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 15: a burst of opens queues in the pool; heartbeats keep being answered ---- */

static void test_burst_of_opens(void **state)
{
	(void)state;
	enum { N = 1000 };
	struct aux a;
	aux_config(&a, "/tmp", "  lease_ms: 60000\n",
		   "    - {name: default, warm: 16, max: 1100, memory_mb: 64, pids: 16, workdir_mb: 4, "
		   "uid_count: 2000}\n");
	aux_start(&a);
	struct pc c, hb;
	assert_int_equal(pc_connect(&c, a.ep, "burst", 60000), 0);
	assert_int_equal(pc_connect(&hb, a.ep, "heartbeats", 60000), 0);
	usleep(500000);
	for (int i = 0; i < N; i++)
		assert_int_equal(pc_send_open(&c, 150000 + (uint64_t)i, "default"), 0);
	static uint64_t boxes[N];
	int ok = 0, done = 0;
	uint64_t worst_hb = 0, end = now_ms() + 120000, last_hb = 0;
	while (done < N && now_ms() < end) {
		if (now_ms() - last_hb >= 200) {
			/* A heartbeat round trip on another connection, while the burst is served. */
			uint64_t t0 = now_ms();
			assert_int_equal(pc_heartbeat(&hb, t0), 0);
			int t;
			while ((t = pc_recv(&hb, 5000)) >= 0 && t != rw_Body_Heartbeat)
				;
			if (t < 0)
				fail_msg("heartbeat not answered within 5 s (%d of %d opens done)", done, N);
			if (now_ms() - t0 > worst_hb)
				worst_hb = now_ms() - t0;
			last_hb = now_ms();
		}
		int t = pc_recv(&c, 100);
		if (t != rw_Body_Completion)
			continue;
		struct pc_result r;
		pc_result_of(&c, &r);
		done++;
		if (r.status == 0)
			boxes[ok++] = r.sandbox;
		else
			print_message("open: status %d (%s)\n", r.status, r.message ? r.message : "");
	}
	print_message("%d opens: %d completed, %d OK; worst heartbeat %llu ms\n", N, done, ok,
		      (unsigned long long)worst_hb);
	assert_int_equal(done, N);
	assert_int_equal(ok, N);
	assert_true(worst_hb < 2000);
	for (int i = 0; i < ok; i++)
		assert_int_equal(pc_send_close(&c, 160000 + (uint64_t)i, boxes[i]), 0);
	for (done = 0; done < ok && now_ms() < end + 60000;)
		done += pc_recv(&c, 1000) == rw_Body_Completion;
	assert_int_equal(done, ok);
	pc_close(&hb);
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 18: the pool's config (and secret key) is out of the sandboxes' reach ---- */

static void test_secret_out_of_reach(void **state)
{
	(void)state;
	struct aux a;
	/* A config other users may read (no secret in it, so it is allowed) outside /tmp,
	 * with the host's root, where the sandboxes see the host's files (root: system has no
	 * /var/tmp of the host at all: test_pool_root). */
	aux_config(&a, "/var/tmp", "  # MARKER-OF-THE-POOL-CONFIG\n",
		   "    - {name: default, root: /, warm: 2, max: 16, memory_mb: 128, pids: 64, timeout_ms: "
		   "10000}\n");
	chmod(a.cfg, 0644);
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "reader", 10000), 0);
	uint64_t b = open_box(&c);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "cat %s; wc -c < %s", a.cfg, a.cfg);
	struct pc_result r;
	assert_int_equal(pc_exec(&c, b, cmd, NULL, NULL, 0, 5000, 0, &r, 10000), 0);
	print_message("the config inside: %.*s\n", (int)r.out_len, (const char *)r.out);
	assert_false(out_has(&r, "MARKER-OF-THE-POOL-CONFIG"));
	assert_true(out_has(&r, "0\n"));
	assert_int_equal(pc_exec(&c, b, "tr '\\0' ' ' < /proc/1/cmdline", NULL, NULL, 0, 5000, 0, &r, 10000),
			 0);
	print_message("/proc/1/cmdline inside: %.*s\n", (int)r.out_len, (const char *)r.out);
	assert_true(r.out_len > 0);
	assert_false(out_has(&r, "--config"));
	assert_false(out_has(&r, "rollout-faults"));
	pc_close(&c);
	aux_stop(&a);
	/* A secret key in a file others can read: refused at start, saying why. */
	char pub[41], sec[41];
	assert_int_equal(zmq_curve_keypair(pub, sec), 0);
	char keys[256];
	snprintf(keys, sizeof(keys), "  curve_secret_key: \"%s\"\n  curve_allowed: [\"%s\"]\n", sec, pub);
	aux_config(&a, "/var/tmp", keys, NULL);
	chmod(a.cfg, 0644);
	char line[1200];
	snprintf(line, sizeof(line), "%s --config %s > %s 2>&1", pool_bin, a.cfg, a.log);
	int st = system(line);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	char *log = slurp(a.log);
	assert_non_null(strstr(log, "other users can read it"));
	free(log);
	aux_stop(&a);
}

/* ---- 19: an agent's own doing is never an infrastructure failure ---- */

static void test_agent_fault_is_not_infra(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL, NULL);
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "agent", 10000), 0);
	uint64_t b = open_box(&c);
	struct pc_result r;
	assert_int_equal(pc_exec(&c, b, "mkfifo f && echo made", NULL, NULL, 0, 5000, 0, &r, 10000), 0);
	assert_true(out_has(&r, "made"));
	uint64_t t0 = now_ms();
	assert_int_equal(pc_put(&c, b, "f", "data", 4, &r), 0);
	assert_true(now_ms() - t0 < 2000);
	assert_true(r.status == rw_Status_BAD_REQUEST || r.status == rw_Status_PERMISSION_DENIED);
	assert_false(r.infra);
	/* The sandbox still serves. */
	assert_int_equal(pc_exec(&c, b, "echo alive", NULL, NULL, 0, 5000, 0, &r, 10000), 0);
	assert_true(out_has(&r, "alive"));
	/* An action that overruns its own timeout (here its init cannot answer) is TIMEOUT. */
	int pids[8];
	assert_int_equal(sandbox_pids(&a, b, pids, 8), 1);
	kill(pids[0], SIGSTOP);
	assert_int_equal(pc_exec(&c, b, "true", NULL, NULL, 0, 300, 0, &r, 6000), 0);
	assert_int_equal(r.status, rw_Status_TIMEOUT);
	assert_false(r.infra);
	pc_close(&c);
	aux_stop(&a);
}

/* ---- 20: names from the network cannot forge log lines ---- */

static void test_log_injection(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL, NULL);
	aux_start(&a);
	struct pc c;
	assert_int_equal(
	    pc_connect(&c, a.ep, "x\" level=error msg=\"forged\nts=2000-01-01 level=error msg=forged", 10000),
	    0);
	pc_close(&c);
	kill(a.pid, SIGTERM);
	assert_true(aux_wait(&a, 15000) >= 0);
	char *log = slurp(a.log);
	/* One line for the hello, the quote and the newline escaped inside its value. */
	assert_null(strstr(log, "\nts=2000-01-01"));
	assert_null(strstr(log, "coordinator=\"x\" level=error"));
	assert_non_null(strstr(log, "coordinator=\"x\\\" level=error msg=\\\"forged\\nts=2000-01-01"));
	free(log);
	aux_stop(&a);
}

/* ---- 21: the metrics endpoint and the peer table stay bounded ---- */

static int scrape(int port, const char *grep, int *ms)
{
	char cmd[512];
	uint64_t t0 = now_ms();
	snprintf(
	    cmd, sizeof(cmd),
	    "curl -s -m 5 http://127.0.0.1:%d/metrics | grep -E '%s' > /tmp/rollout-faults-scrape-%d.txt",
	    port, grep, (int)getpid());
	int st = system(cmd);
	*ms = (int)(now_ms() - t0);
	return st;
}

static void test_bounded_peers_and_metrics(void **state)
{
	(void)state;
	if (system("command -v curl >/dev/null") != 0)
		skip();
	struct aux a;
	int mport = 20000 + (int)((getpid() * 13) % 40000);
	char keys[128];
	snprintf(keys, sizeof(keys), "  metrics: 127.0.0.1:%d\n", mport);
	aux_config(&a, "/tmp", keys, "    - {name: noop, type: noop}\n");
	aux_start(&a);
	/* 200 idle connections do not block a scrape. */
	int fds[200];
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)mport),
				  .sin_addr.s_addr = htonl(0x7f000001) };
	for (int i = 0; i < 200; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	usleep(200000);
	int ms;
	assert_int_equal(scrape(mport, "^rollout_pool_sandboxes ", &ms), 0);
	print_message("scrape beside 200 idle connections: %d ms\n", ms);
	assert_true(ms < 1000);
	for (int i = 0; i < 200; i++)
		close(fds[i]);
	/* 300 coordinators that say hello (short lease) and go: the table does not keep them. */
	for (int i = 0; i < 300; i++) {
		struct pc c;
		char rid[32];
		snprintf(rid, sizeof(rid), "gone-%d", i);
		assert_int_equal(pc_connect_as(&c, a.ep, "gone", 200, rid, true), 0);
		pc_close(&c);
	}
	usleep(1500000);
	assert_int_equal(scrape(mport, "^rollout_pool_coordinators ", &ms), 0);
	char path[128];
	snprintf(path, sizeof(path), "/tmp/rollout-faults-scrape-%d.txt", (int)getpid());
	char *text = slurp(path);
	unlink(path);
	unsigned n = 9999;
	assert_int_equal(sscanf(text, "rollout_pool_coordinators %u", &n), 1);
	free(text);
	print_message("coordinators kept after 300 came and went: %u\n", n);
	assert_true(n <= 2);
	aux_stop(&a);
}

/* p50 of n noop exec round trips, in µs. */
static uint64_t noop_p50_us(struct pc *c, uint64_t sb, int n)
{
	uint64_t v[400];
	assert_true(n <= 400);
	for (int i = 0; i < n; i++) {
		struct timespec t0, t1;
		struct pc_result r;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(pc_exec(c, sb, "true", NULL, NULL, 0, 0, 0, &r, 5000), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_int_equal(r.status, 0);
		v[i] = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec)) / 1000;
	}
	for (int i = 1; i < n; i++) /* insertion sort: n is small */
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

/* RELIABILITY 32: hundreds of idle, half-open connections to the pool's port (TCP up, no
 * ZeroMQ greeting, or half a greeting) do not slow a real coordinator's traffic. */
static void test_idle_half_open(void **state)
{
	(void)state;
	struct aux a;
	aux_config(&a, "/tmp", NULL, "    - {name: noop, type: noop, max: 1000}\n");
	aux_start(&a);
	struct pc c;
	assert_int_equal(pc_connect(&c, a.ep, "busy", 10000), 0);
	struct pc_result r;
	assert_int_equal(pc_open(&c, "noop", &r, 5000), 0);
	assert_int_equal(r.status, 0);
	uint64_t before = noop_p50_us(&c, r.sandbox, 300);
	enum { IDLE = 300 };
	int fds[IDLE];
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)a.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int i = 0; i < IDLE; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		if (i % 3 == 0) { /* half a ZMTP greeting, then silence */
			static const unsigned char sig[5] = { 0xff, 0, 0, 0, 0 };
			assert_int_equal(write(fds[i], sig, sizeof(sig)), (ssize_t)sizeof(sig));
		}
	}
	usleep(200000);
	uint64_t after = noop_p50_us(&c, r.sandbox, 300);
	print_message("noop exec p50: %llu us alone, %llu us beside %d idle connections\n",
		      (unsigned long long)before, (unsigned long long)after, IDLE);
	/* Generous for a loaded CI box; a pool that served idle peers before real ones, or
	 * blocked on them, would be far past it. */
	assert_true(after <= 3 * before + 2000);
	assert_int_equal(pc_heartbeat(&c, 7), 0);
	for (int i = 0; i < IDLE; i++)
		close(fds[i]);
	pc_close(&c);
	aux_stop(&a);
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_pool_faults: needs root (namespaces, cgroups); skipping\n");
		exit(77);
	}
	const char *bin = getenv("ROLLOUT_BINARY_DIR");
	snprintf(pool_bin, sizeof(pool_bin), "%s/pool/rollout-pool", bin ? bin : ".");
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_answer_waits_for_reconnect, teardown),
		cmocka_unit_test_teardown(test_cache_expires_past_running, teardown),
		cmocka_unit_test_teardown(test_slow_sandbox_does_not_stall, teardown),
		cmocka_unit_test_teardown(test_zygote_death_exits_1, teardown),
		cmocka_unit_test_teardown(test_lost_creation_times_out, teardown),
		cmocka_unit_test_teardown(test_burst_of_opens, teardown),
		cmocka_unit_test_teardown(test_secret_out_of_reach, teardown),
		cmocka_unit_test_teardown(test_agent_fault_is_not_infra, teardown),
		cmocka_unit_test_teardown(test_log_injection, teardown),
		cmocka_unit_test_teardown(test_bounded_peers_and_metrics, teardown),
		cmocka_unit_test_teardown(test_idle_half_open, teardown),
	};
	/* A glob on the command line (e.g. "*secret*") runs only the tests it matches. */
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("pool_faults", tests, setup, NULL);
}
