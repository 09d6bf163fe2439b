/* rollout-bench env: what environments cost on a real rollout-pool, on the busybox OCI image
 * of scripts/mkimage. In one invocation: cold creation of image sandboxes (and of root: system
 * ones for context) against `runc run` of the same image, a 50 MB snapshot, 16 forks of one
 * snapshot opened at once, and resuming a checkpoint on a second pool after the first was
 * killed. Needs root (exit 77 otherwise).
 *
 * What the runc comparison compares: runc's figure is `runc run` of /bin/true from fork to
 * exit (container setup, running /bin/true, and runc's own teardown; the unpack and `runc
 * delete` are outside it), while image_cold_create is only the creation (open -> Opened). The
 * like-for-like figure is image_create_exec: open + exec /bin/true + close through the pool. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "client.h"
#include "env_runc.h"
#include "rollout_wire.h"

#define TAG        "rollout-bench env: "
#define FORKS      16
#define SNAP_FILES 1000
#define SNAP_BYTES 52428 /* x 1000 files = 50 MiB */

struct eopts {
	int runs;   /* creations per kind, and runc runs */
	int rounds; /* snapshots, fork rounds, resume rounds */
	bool json;
	char pool_bin[PATH_MAX];
	char images[PATH_MAX - 64]; /* mkimage's OUTDIR */
	const char *snapshot_dir;   /* the store's parent (default: the run's temporary directory) */
};

/* One rollout-pool child of this bench: its config, endpoint, metrics port and cgroup. */
struct pool_proc {
	const char *name;
	pid_t pid;
	char cfg[PATH_MAX], ep[64], cgroup[64];
	int metrics_port;
	unsigned uid_base;
	struct pc c;
	bool connected;
};

static char tmpdir[128], layout[PATH_MAX], snapdir[PATH_MAX];
/* Pools alive, for the signal handler: a bench stopped by ^C leaves no pool running. */
static volatile sig_atomic_t live_pids[2];

static void on_signal(int sig)
{
	for (int i = 0; i < 2; i++)
		if (live_pids[i] > 0)
			kill(live_pids[i], SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int port = -1;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static void write_config(struct pool_proc *p, int runs)
{
	FILE *f = fopen(p->cfg, "w");
	if (!f)
		return;
	/* img: cold creations and forks; sys: the non-image reference; big: the 50 MB snapshot
	 * (tmpfs pages are charged to the sandbox's memory cgroup). warm 0: every open creates. */
	fprintf(f,
		"pool:\n"
		"  identity: bench-env-%s\n"
		"  listen: %s\n"
		"  metrics: 127.0.0.1:%d\n"
		"  cgroup: %s\n"
		"  state_dir: %s/state-%s\n"
		"  snapshot_dir: %s\n"
		"  snapshot_max_depth: 8\n"
		"  profiles:\n"
		"    - {name: img, image: \"oci:%s:latest\", disk_mb: 32, warm: 0, max: %d, memory_mb: 256, "
		"uid_base: %u, uid_count: 1000}\n"
		"    - {name: sys, root: system, warm: 0, max: %d, workdir_mb: 16, memory_mb: 256, "
		"uid_base: %u, uid_count: 1000}\n"
		"    - {name: big, image: \"oci:%s:latest\", disk_mb: 128, warm: 0, max: 2, memory_mb: 768, "
		"uid_base: %u, uid_count: 1000}\n",
		p->name, p->ep, p->metrics_port, p->cgroup, tmpdir, p->name, snapdir, layout,
		runs + 2 * FORKS + 8, p->uid_base, runs + 8, p->uid_base + 1000, layout, p->uid_base + 2000);
	fclose(f);
}

/* Starts the pool and connects to it; slot is its place in live_pids. 0 or -1 (reported). */
static int pool_start(struct pool_proc *p, const char *bin, int slot)
{
	p->pid = pc_spawn_pool(bin, p->cfg, p->ep, 60000);
	if (p->pid < 0) {
		fprintf(stderr, TAG "cannot start pool %s (%s)\n", p->name, strerror((int)-p->pid));
		return -1;
	}
	live_pids[slot] = p->pid;
	if (pc_connect(&p->c, p->ep, "bench-env", 60000)) {
		fprintf(stderr, TAG "cannot connect to pool %s\n", p->name);
		return -1;
	}
	p->connected = true;
	return 0;
}

static void pool_stop(struct pool_proc *p, int sig, int slot)
{
	if (p->connected)
		pc_close(&p->c);
	p->connected = false;
	if (p->pid > 0) {
		kill(p->pid, sig);
		waitpid(p->pid, NULL, 0);
	}
	p->pid = -1;
	live_pids[slot] = 0;
}

/* GET /metrics from the pool's endpoint into buf (NUL-terminated). Length or -errno. */
static int scrape(const struct pool_proc *p, char *buf, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)p->metrics_port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
	size_t len = 0;
	int rc = 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    write(fd, req, sizeof(req) - 1) != sizeof(req) - 1) {
		rc = -errno;
		goto out;
	}
	for (ssize_t n; len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) != 0; len += (size_t)n)
		if (n < 0) {
			rc = -errno;
			goto out;
		}
	buf[len] = 0;
out:
	close(fd);
	return rc ? rc : (int)len;
}

/* A sample without labels: "NAME VALUE" at the start of a line. */
static bool metric(const char *text, const char *name, double *v)
{
	size_t n = strlen(name);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ' ')
			return sscanf(l + n + 1, "%lf", v) == 1;
	return false;
}

/* The pool's own creation time so far: the sandbox_create_seconds histogram's sum and count. */
static int create_hist(const struct pool_proc *p, double *sum_s, double *count)
{
	static char buf[1 << 18];
	if (scrape(p, buf, sizeof(buf)) < 0 ||
	    !metric(buf, "rollout_pool_sandbox_create_seconds_sum", sum_s) ||
	    !metric(buf, "rollout_pool_sandbox_create_seconds_count", count))
		return -1;
	return 0;
}

/* Sandbox cgroups under the pool's group (v1 memory or v2 unified); -1 when it is absent. */
static int cgroup_children(const char *group)
{
	static const char *const roots[] = { "/sys/fs/cgroup/memory", "/sys/fs/cgroup" };
	for (size_t i = 0; i < 2; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", roots[i], group);
		DIR *d = opendir(path);
		if (!d)
			continue;
		int n = 0;
		for (struct dirent *e; (e = readdir(d));)
			n += e->d_type == DT_DIR && e->d_name[0] != '.';
		closedir(d);
		return n;
	}
	return -1;
}

/* Whether any hierarchy still holds the group (the pool removes it when it stops). */
static bool cgroup_left(const char *group)
{
	DIR *d = opendir("/sys/fs/cgroup");
	bool left = false;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", group);
	left = access(path, F_OK) == 0;
	for (struct dirent *e; d && !left && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", e->d_name, group);
		left = access(path, F_OK) == 0;
	}
	if (d)
		closedir(d);
	return left;
}

/* After closes: the zygote destroys sandboxes after the pool answered, so the next timed
 * creation would queue behind those destroys. Waits until at most `keep` sandbox groups are
 * left (or 10 s), then a little longer for the zygote's last steps. */
static void wait_destroyed(const struct pool_proc *p, int keep)
{
	for (int i = 0; i < 1000 && cgroup_children(p->cgroup) > keep; i++)
		usleep(10000);
	usleep(50000);
}

static double us_since(uint64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1000.0;
}

/* An open that waits out NO_CAPACITY while the pool still resolves the image. */
static int open_ready(struct pc *c, const char *profile, const char *snap, uint32_t ckpt, struct pc_result *r)
{
	for (int i = 0; i < 600; i++) {
		if (pc_open_ex(c, profile, snap, ckpt, r, 60000))
			return -1;
		if (r->status != rw_Status_NO_CAPACITY)
			break;
		usleep(50000);
	}
	if (r->status) {
		fprintf(stderr, TAG "open %s: status %d (%s)\n", profile, r->status,
			r->message ? r->message : "");
		return -1;
	}
	return 0;
}

/* Runs a shell line (shell NULL: argv) and wants exit 0; out (may be NULL) gets stdout. */
static int run(struct pc *c, uint64_t box, const char *line, const char *const *argv, char *out, size_t outsz)
{
	struct pc_result r;
	if (pc_exec(c, box, line, argv, NULL, 0, 120000, 4096, &r, 180000)) {
		fprintf(stderr, TAG "exec '%s': no answer\n", line ? line : argv[0]);
		return -1;
	}
	if (r.status || r.exit_code) {
		fprintf(stderr, TAG "exec '%s': status %d exit %d (%s) %.*s\n", line ? line : argv[0],
			r.status, r.exit_code, r.message ? r.message : "", (int)r.err_len,
			(const char *)r.err);
		return -1;
	}
	if (out)
		snprintf(out, outsz, "%.*s", (int)r.out_len, (const char *)r.out);
	return 0;
}

static int close_box(struct pc *c, uint64_t box)
{
	struct pc_result r;
	if (pc_close_sandbox(c, box, &r) || r.status) {
		fprintf(stderr, TAG "close %llu failed\n", (unsigned long long)box);
		return -1;
	}
	return 0;
}

/* Cold creations of one profile: n opens one at a time on a pool with warm 0, each timed
 * from the send to its Opened; the sandboxes are kept until all n are made (no destroy in
 * the zygote's queue), then closed. pool_mean_us: the zygote's own creation time, from the
 * pool's histogram over the same creations. */
static int cold_creates(struct pool_proc *p, const char *profile, int n, double *us, double *pool_mean_us)
{
	uint64_t *boxes = calloc((size_t)n, sizeof(*boxes));
	double s0, c0, s1, c1;
	int rc = -1, made = 0;
	if (!boxes || create_hist(p, &s0, &c0))
		goto out;
	for (; made < n; made++) {
		struct pc_result r;
		uint64_t t0 = bench_now_ns();
		if (pc_open(&p->c, profile, &r, 60000) || r.status) {
			fprintf(stderr, TAG "open %s: status %d\n", profile, r.status);
			goto out;
		}
		us[made] = us_since(t0);
		boxes[made] = r.sandbox;
	}
	if (create_hist(p, &s1, &c1) || c1 - c0 < n)
		goto out;
	*pool_mean_us = (s1 - s0) / (c1 - c0) * 1e6;
	rc = 0;
out:
	for (int i = 0; i < made; i++)
		close_box(&p->c, boxes[i]);
	wait_destroyed(p, 0);
	free(boxes);
	return rc;
}

/* open + exec /bin/true + close, one after the other: what runc's figure holds. */
static int create_exec_close(struct pool_proc *p, int n, double *us)
{
	static const char *const argv[] = { "/bin/true", NULL };
	for (int i = 0; i < n; i++) {
		struct pc_result r;
		uint64_t t0 = bench_now_ns();
		if (pc_open(&p->c, "img", &r, 60000) || r.status)
			return -1;
		uint64_t box = r.sandbox;
		if (run(&p->c, box, NULL, argv, NULL, 0) || close_box(&p->c, box))
			return -1;
		us[i] = us_since(t0);
	}
	wait_destroyed(p, 0);
	return 0;
}

/* 1000 files of 52,428 bytes rewritten in the sandbox, then a snapshot of it, `rounds`
 * times; ms and frozen_ms per snapshot. */
static int snapshots(struct pool_proc *p, int rounds, double *ms, double *frozen_ms, double *mb,
		     double *files)
{
	struct pc_result r;
	if (open_ready(&p->c, "big", NULL, 0, &r))
		return -1;
	uint64_t box = r.sandbox;
	char line[512];
	snprintf(line, sizeof(line),
		 "mkdir -p /data && cd /data && i=0; while [ $i -lt %d ]; do head -c %d /dev/urandom > f$i; "
		 "i=$((i+1)); done",
		 SNAP_FILES, SNAP_BYTES);
	int rc = 0;
	for (int i = 0; i < rounds && !rc; i++) {
		if ((rc = run(&p->c, box, line, NULL, NULL, 0)))
			break;
		uint64_t t0 = bench_now_ns();
		if (pc_snapshot(&p->c, box, false, &r, 120000) || r.status) {
			fprintf(stderr, TAG "snapshot: status %d (%s)\n", r.status,
				r.message ? r.message : "");
			rc = -1;
			break;
		}
		ms[i] = us_since(t0) / 1000.0;
		frozen_ms[i] = (double)r.frozen_us / 1000.0;
		mb[i] = (double)r.snapshot_bytes / (1 << 20);
		files[i] = (double)r.snapshot_files;
		bench_note("  snapshot %d: %.1f ms (frozen %.1f ms), %.1f MiB in %.0f files", i + 1, ms[i],
			   frozen_ms[i], mb[i], files[i]);
	}
	close_box(&p->c, box);
	wait_destroyed(p, 0);
	return rc;
}

/* Waits for the completions of dispatches base .. base+n-1, in whatever order they come. */
static int wait_all(struct pc *c, uint64_t base, int n, uint64_t *boxes)
{
	bool done[FORKS] = { 0 };
	int got = 0, failed = 0;
	uint64_t end = bench_now_ns() + 120000000000ull;
	while (got < n) {
		uint64_t now = bench_now_ns();
		if (now >= end)
			return -ETIMEDOUT;
		int t = pc_recv(c, (int)((end - now) / 1000000) + 1);
		if (t == -EAGAIN)
			continue;
		if (t < 0)
			return t;
		if (t != rw_Body_Completion)
			continue;
		uint64_t d = rw_Message_dispatch_id(rw_Message_root(c->buf));
		if (d < base || d >= base + (uint64_t)n || done[d - base])
			continue;
		struct pc_result r;
		pc_result_of(c, &r);
		done[d - base] = true;
		got++;
		boxes[d - base] = r.status ? 0 : r.sandbox;
		if (r.status) {
			fprintf(stderr, TAG "fork open: status %d (%s)\n", r.status,
				r.message ? r.message : "");
			failed++;
		}
	}
	return failed ? -EIO : 0;
}

/* One snapshot of a sandbox with some files (200 small ones and 1 MiB); each round sends 16
 * opens from it at once and times until the last is Opened. */
static int forks(struct pool_proc *p, int rounds, double *ms, double *pool_mean_us)
{
	double s0, c0, s1, c1;
	struct pc_result r;
	if (open_ready(&p->c, "img", NULL, 0, &r))
		return -1;
	uint64_t parent = r.sandbox;
	char snap[128];
	int rc =
	    run(&p->c, parent,
		"mkdir -p /work && cd /work && i=0; while [ $i -lt 200 ]; do echo file $i > f$i; i=$((i+1)); "
		"done; head -c 1048576 /dev/urandom > blob",
		NULL, NULL, 0);
	if (!rc && (pc_snapshot(&p->c, parent, false, &r, 60000) || r.status || !r.snapshot))
		rc = -1;
	if (!rc)
		snprintf(snap, sizeof(snap), "%s", r.snapshot);
	close_box(&p->c, parent);
	wait_destroyed(p, 0);
	if (!rc && create_hist(p, &s0, &c0))
		rc = -1;
	for (int i = 0; i < rounds && !rc; i++) {
		uint64_t base = (1ull << 40) + (uint64_t)i * 1000, boxes[FORKS] = { 0 };
		uint64_t t0 = bench_now_ns();
		for (int k = 0; k < FORKS && !rc; k++)
			rc = pc_send_open_ex(&p->c, base + (uint64_t)k, "img", snap);
		if (!rc)
			rc = wait_all(&p->c, base, FORKS, boxes);
		ms[i] = us_since(t0) / 1000.0;
		/* Each fork sees the parent's files. */
		char out[64] = "";
		if (!rc && boxes[FORKS - 1] &&
		    (run(&p->c, boxes[FORKS - 1], "cat /work/f199", NULL, out, sizeof(out)) ||
		     strcmp(out, "file 199\n"))) {
			fprintf(stderr, TAG "a fork does not see the snapshot's files\n");
			rc = -1;
		}
		for (int k = 0; k < FORKS; k++)
			if (boxes[k])
				close_box(&p->c, boxes[k]);
		wait_destroyed(p, 0);
		bench_note("  16 forks, round %d: %.1f ms", i + 1, ms[i]);
	}
	/* The zygote makes them one after the other: its own time per fork. */
	if (!rc && !create_hist(p, &s1, &c1) && c1 > c0)
		*pool_mean_us = (s1 - s0) / (c1 - c0) * 1e6;
	return rc;
}

/* Pool a opens a sandbox with a checkpoint after every step, runs one step, and is killed
 * with SIGKILL; then, on pool b (running, connected), the checkpoint is opened and a command
 * answered in it. Timed from the kill to that answer. a is started anew each round. */
static int resumes(struct pool_proc *a, struct pool_proc *b, const char *bin, int rounds, double *ms)
{
	for (int i = 0; i < rounds; i++) {
		if (pool_start(a, bin, 1))
			return -1;
		struct pc_result r;
		if (open_ready(&a->c, "img", NULL, 1, &r))
			return -1;
		char line[128], ckpt[128], out[64], want[64];
		snprintf(want, sizeof(want), "step %d\n", i);
		snprintf(line, sizeof(line), "echo step %d > /progress", i);
		if (pc_exec(&a->c, r.sandbox, line, NULL, NULL, 0, 10000, 0, &r, 60000) || r.status ||
		    !r.checkpoint) {
			fprintf(stderr, TAG "resume: the step on pool a brought no checkpoint\n");
			return -1;
		}
		snprintf(ckpt, sizeof(ckpt), "%s", r.checkpoint);
		uint64_t t0 = bench_now_ns();
		kill(a->pid, SIGKILL);
		if (pc_open_ex(&b->c, "img", ckpt, 0, &r, 60000) || r.status) {
			fprintf(stderr, TAG "resume: open of %s on pool b: status %d (%s)\n", ckpt, r.status,
				r.message ? r.message : "");
			return -1;
		}
		uint64_t box = r.sandbox;
		int rc = run(&b->c, box, "cat /progress", NULL, out, sizeof(out));
		ms[i] = us_since(t0) / 1000.0;
		pool_stop(a, SIGKILL, 1);
		close_box(&b->c, box);
		if (rc || strcmp(out, want)) {
			fprintf(stderr, TAG "resume: the resumed sandbox reads '%s', want '%s'\n", out, want);
			return -1;
		}
		bench_note("  resume after kill, round %d: %.1f ms", i + 1, ms[i]);
	}
	/* A pool started under the killed one's group reaps what it left (sandboxes, their
	 * groups); stopped with SIGTERM it removes its group. */
	if (pool_start(a, bin, 1))
		return -1;
	pool_stop(a, SIGTERM, 1);
	wait_destroyed(b, 0);
	return 0;
}

/* Unmounts what a killed pool may have left mounted under tmpdir (none expected), so that
 * the removal cannot reach into a mount. Returns how many were left. */
static int leftover_mounts(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], mnt[PATH_MAX];
	int n = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
		    !strncmp(mnt, tmpdir, strlen(tmpdir))) {
			fprintf(stderr, TAG "left mounted: %s (unmounting)\n", mnt);
			umount2(mnt, MNT_DETACH);
			n++;
		}
	if (f)
		fclose(f);
	return n;
}

static double p50(double *v, int n)
{
	return bench_quantile(v, (size_t)n, 0.5);
}

static int env_main(int argc, char **argv)
{
	struct eopts o = { .runs = 30, .rounds = 5 };
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },         { "runs", required_argument, NULL, 'r' },
		{ "rounds", required_argument, NULL, 'R' }, { "pool", required_argument, NULL, 'p' },
		{ "images", required_argument, NULL, 'i' }, { "snapshot-dir", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	char build[PATH_MAX - 128], rel[PATH_MAX];
	bench_build_dir(rel, sizeof(rel));
	if (!realpath(rel, build))
		snprintf(build, sizeof(build), "%.*s", (int)sizeof(build) - 1, rel);
	snprintf(o.pool_bin, sizeof(o.pool_bin), "%s/pool/rollout-pool", build);
	snprintf(o.images, sizeof(o.images), "%s/bench/env-images", build);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'r':
			o.runs = atoi(optarg);
			break;
		case 'R':
			o.rounds = atoi(optarg);
			break;
		case 'p':
			snprintf(o.pool_bin, sizeof(o.pool_bin), "%s", optarg);
			break;
		case 'i':
			snprintf(o.images, sizeof(o.images), "%s", optarg);
			break;
		case 's':
			o.snapshot_dir = optarg;
			break;
		default:
			printf(
			    "usage: rollout-bench env [--json] [--runs N] [--rounds N] [--pool PATH] "
			    "[--images DIR]\n"
			    "                         [--snapshot-dir DIR]\n"
			    "Image sandboxes on rollout-pool (busybox OCI image of scripts/mkimage, made in\n"
			    "--images, default BUILD/bench/env-images): cold create vs runc run (--runs "
			    "each,\n"
			    "default 30), a 50 MB snapshot, 16 forks of a snapshot, resume after a pool is\n"
			    "killed (--rounds each, default 5). The pools' snapshot store is a new "
			    "directory\n"
			    "under --snapshot-dir (default: the run's directory in /tmp), removed at the "
			    "end.\n"
			    "Needs root.\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, TAG "needs root (namespaces, overlayfs, cgroups, runc); skipping\n");
		return 77;
	}
	if (o.runs < 2 || o.rounds < 1) {
		fprintf(stderr, TAG "--runs >= 2, --rounds >= 1\n");
		return 2;
	}
	char cmd[2 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "%s/scripts/mkimage busybox '%s' >/dev/null", ENV_BENCH_SOURCE_DIR,
		 o.images);
	int st = system(cmd);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		fprintf(stderr,
			TAG "cannot make the busybox image (umoci or busybox-static missing); skipping\n");
		return 77;
	}
	if (st != 0) {
		fprintf(stderr, TAG "scripts/mkimage busybox %s failed\n", o.images);
		return 1;
	}
	snprintf(layout, sizeof(layout), "%s/busybox", o.images);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rollout-bench-env-%d", (int)getpid());
	if (mkdir(tmpdir, 0700)) {
		fprintf(stderr, TAG "mkdir %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	snprintf(snapdir, sizeof(snapdir), "%s/rollout-bench-env-snapshots-%d",
		 o.snapshot_dir ? o.snapshot_dir : tmpdir, (int)getpid());
	if (mkdir(snapdir, 0700)) {
		fprintf(stderr, TAG "mkdir %s: %s\n", snapdir, strerror(errno));
		rmdir(tmpdir);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	int n = o.runs, rounds = o.rounds, rc = 1;
	unsigned uid0 = 600000 + (unsigned)(getpid() % 100) * 10000;
	struct pool_proc b = { .name = "b", .uid_base = uid0 }, a = { .name = "a", .uid_base = uid0 + 5000 };
	struct pool_proc *pools[2] = { &b, &a };
	for (int i = 0; i < 2; i++) {
		struct pool_proc *p = pools[i];
		snprintf(p->cfg, sizeof(p->cfg), "%s/pool-%s.yaml", tmpdir, p->name);
		snprintf(p->ep, sizeof(p->ep), "tcp://127.0.0.1:%d", free_port());
		p->metrics_port = free_port();
		snprintf(p->cgroup, sizeof(p->cgroup), "rollout-bench-env-%d-%s", (int)getpid(), p->name);
		write_config(p, n);
	}
	double *img = calloc((size_t)n, sizeof(double)), *sys = calloc((size_t)n, sizeof(double));
	double *ex = calloc((size_t)n, sizeof(double)), *hb = calloc((size_t)n, sizeof(double));
	uint64_t *runc = calloc((size_t)n, sizeof(uint64_t));
	double *snap_ms = calloc((size_t)rounds, sizeof(double)),
	       *frozen = calloc((size_t)rounds, sizeof(double));
	double *snap_mb = calloc((size_t)rounds, sizeof(double)),
	       *snap_files = calloc((size_t)rounds, sizeof(double));
	double *fork_ms = calloc((size_t)rounds, sizeof(double)),
	       *resume = calloc((size_t)rounds, sizeof(double));
	double img_pool = 0, sys_pool = 0, fork_pool = 0;
	char runc_dir[PATH_MAX];
	snprintf(runc_dir, sizeof(runc_dir), "%s/runc", tmpdir);
	bench_note("env: image %s:latest, %d creations per kind, %d rounds; pools %s (%s) and %s; "
		   "snapshots in %s",
		   layout, n, rounds, b.ep, b.cgroup, a.ep, snapdir);

	if (pool_start(&b, o.pool_bin, 0))
		goto out;
	/* The image resolved and every first-use path warmed up before timing. */
	struct pc_result r;
	const char *const warm_profiles[] = { "img", "sys" };
	for (int i = 0; i < 2; i++) {
		if (open_ready(&b.c, warm_profiles[i], NULL, 0, &r))
			goto out;
		close_box(&b.c, r.sandbox);
	}
	wait_destroyed(&b, 0);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		pc_heartbeat(&b.c, (uint64_t)i);
		while (pc_recv(&b.c, 1000) != rw_Body_Heartbeat)
			;
		hb[i] = us_since(t0);
	}
	bench_note("cold create: %d image opens, %d system opens, one at a time, warm 0", n, n);
	if (cold_creates(&b, "img", n, img, &img_pool) || cold_creates(&b, "sys", n, sys, &sys_pool))
		goto out;
	bench_note("create + exec /bin/true + close: %d times", n);
	if (create_exec_close(&b, n, ex))
		goto out;
	bench_note("runc run /bin/true: %d times (bundle unpacked once with umoci, outside the timing)", n);
	static const char *const true_argv[] = { "/bin/true", NULL };
	if (runc_baseline(layout, "latest", runc_dir, true_argv, (unsigned)n, runc))
		goto out;
	bench_note("snapshot: %d files of %d bytes, %d times", SNAP_FILES, SNAP_BYTES, rounds);
	if (snapshots(&b, rounds, snap_ms, frozen, snap_mb, snap_files))
		goto out;
	bench_note("forks: %d opens from one snapshot at once, %d rounds", FORKS, rounds);
	if (forks(&b, rounds, fork_ms, &fork_pool))
		goto out;
	bench_note("resume: kill -9 pool a, open its checkpoint on pool b, %d rounds", rounds);
	if (resumes(&a, &b, o.pool_bin, rounds, resume))
		goto out;
	rc = 0;
out:
	pool_stop(&a, SIGTERM, 1);
	pool_stop(&b, SIGTERM, 0);
	runc_baseline_clean(runc_dir);
	if (leftover_mounts())
		rc = 1;
	for (int i = 0; i < 2; i++)
		if (cgroup_left(pools[i]->cgroup)) {
			fprintf(stderr, TAG "cgroup %s left behind\n", pools[i]->cgroup);
			rc = 1;
		}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", snapdir, tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, TAG "could not remove %s\n", tmpdir);
	if (rc == 0) {
		double *rv = calloc((size_t)n, sizeof(double));
		for (int i = 0; i < n; i++)
			rv[i] = (double)runc[i];
		double img50 = p50(img, n), sys50 = p50(sys, n), ex50 = p50(ex, n), runc50 = p50(rv, n);
		double img99 = bench_quantile(img, (size_t)n, 0.99), hb50 = p50(hb, n);
		double snap50 = p50(snap_ms, rounds), frozen50 = p50(frozen, rounds),
		       mb50 = p50(snap_mb, rounds);
		double files50 = p50(snap_files, rounds), fork50 = p50(fork_ms, rounds),
		       res50 = p50(resume, rounds);
		printf("image cold create (open -> Opened) p50 %.0f us, p99 %.0f us; the pool's own creation "
		       "mean %.0f us; transport round trip %.0f us\n",
		       img50, img99, img_pool, hb50);
		printf("system cold create p50 %.0f us (pool mean %.0f us)\n", sys50, sys_pool);
		printf("runc run /bin/true p50 %.0f us (setup, /bin/true and teardown): %.1fx image cold "
		       "create; open + exec /bin/true + close p50 %.0f us: %.1fx\n",
		       runc50, runc50 / img50, ex50, runc50 / ex50);
		printf("snapshot of %.1f MiB in %.0f files p50 %.1f ms (frozen %.1f ms)\n", mb50, files50,
		       snap50, frozen50);
		printf("16 forks of a snapshot p50 %.1f ms (the pool's own creation mean %.0f us per fork); "
		       "resume after kill -9 p50 %.1f ms\n",
		       fork50, fork_pool, res50);
		if (o.json) {
			bench_json_begin();
			bench_json_str("suite", "env");
			bench_json_int("runs", n);
			bench_json_int("rounds", rounds);
			bench_json_num("image_cold_create_p50_us", img50);
			bench_json_num("image_cold_create_p99_us", img99);
			bench_json_num("image_create_pool_mean_us", img_pool);
			bench_json_num("system_cold_create_p50_us", sys50);
			bench_json_num("system_create_pool_mean_us", sys_pool);
			bench_json_num("transport_rtt_p50_us", hb50);
			bench_json_num("runc_run_p50_us", runc50);
			bench_json_num("ratio_vs_runc", runc50 / img50);
			bench_json_num("image_create_exec_p50_us", ex50);
			bench_json_num("ratio_vs_runc_exec", runc50 / ex50);
			bench_json_num("snapshot_p50_ms", snap50);
			bench_json_num("snapshot_frozen_p50_ms", frozen50);
			bench_json_num("snapshot_mib", mb50);
			bench_json_num("snapshot_files", files50);
			bench_json_num("fork16_total_ms", fork50);
			bench_json_num("fork_create_pool_mean_us", fork_pool);
			bench_json_num("resume_after_kill_ms", res50);
			bench_json_end();
		}
		free(rv);
	}
	free(img), free(sys), free(ex), free(hb), free(runc);
	free(snap_ms), free(frozen), free(snap_mb), free(snap_files), free(fork_ms), free(resume);
	return rc;
}

BENCH_SUITE(env, "env", "image sandboxes: cold create vs runc, snapshot, forks, resume after a kill",
	    env_main)
