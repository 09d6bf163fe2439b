/* Environments end to end on a real rollout-pool: an OCI image (made by scripts/mkimage from
 * busybox-static) as a writable overlay root, disk_mb, snapshots and forks (content, modes,
 * symlinks, deletions, empty and opaque directories; isolation between forks, the parent and
 * the image), chains and flattening, a snapshot of a sandbox that keeps writing, checkpoints,
 * the store's budget, a pool killed mid-snapshot, resume on a second pool sharing the store,
 * and a profile whose image is refused while the others serve. Root only (exit 77 else),
 * and skipped (77) when the image cannot be made (umoci or busybox-static missing). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../common/test_port.h"
#include "client.h"
#include "rollout_wire.h"

static char pool_bin[512], config[400], endpoint[64], group[80], dir[256], image[512], snapdir[300];
static pid_t pool_pid;
static struct pc C;
static unsigned uid_base;

static void write_config(const char *path, const char *ep, const char *snaps, unsigned budget_mb,
			 unsigned max_depth)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f,
		"pool:\n"
		"  identity: env-pool\n"
		"  listen: %s\n"
		"  cgroup: %s\n"
		"  state_dir: %s/state\n"
		"  snapshot_dir: %s\n"
		"  snapshot_budget_mb: %u\n"
		"  snapshot_max_depth: %u\n"
		"  profiles:\n"
		"    - name: box\n"
		"      image: oci:%s:latest\n"
		"      disk_mb: 32\n"
		"      warm: 2\n"
		"      max: 32\n"
		"      memory_mb: 256\n"
		"      uid_base: %u\n"
		"      uid_count: 1000\n"
		"    - name: ero\n"
		"      image: %s.erofs\n"
		"      uid_base: %u\n"
		"      uid_count: 1000\n"
		"    - name: sq\n"
		"      image: %s.squashfs\n"
		"      uid_base: %u\n"
		"      uid_count: 1000\n"
		"    - name: bad\n"
		"      image: oci:%s:no-such-tag\n"
		"      uid_base: %u\n"
		"      uid_count: 1000\n",
		ep, group, dir, snaps, budget_mb, max_depth, image, uid_base, image, uid_base + 2000, image,
		uid_base + 3000, image, uid_base + 1000);
	fclose(f);
}

static int start_pool(unsigned budget_mb, unsigned max_depth)
{
	write_config(config, endpoint, snapdir, budget_mb, max_depth);
	pool_pid = pc_spawn_pool(pool_bin, config, endpoint, 20000);
	if (pool_pid < 0)
		return -1;
	return pc_connect(&C, endpoint, "tester", 10000);
}

static void stop_pool(int sig)
{
	pc_close(&C);
	if (pool_pid > 0) {
		kill(pool_pid, sig);
		waitpid(pool_pid, NULL, 0);
	}
	pool_pid = -1;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_pool_env: needs root (namespaces, overlayfs, cgroups); skipping\n");
		exit(77);
	}
	const char *bin = getenv("ROLLOUT_BINARY_DIR"), *src = getenv("ROLLOUT_SOURCE_DIR");
	snprintf(pool_bin, sizeof(pool_bin), "%s/pool/rollout-pool", bin ? bin : ".");
	snprintf(dir, sizeof(dir), "/tmp/rollout-test-env-%d", (int)getpid());
	mkdir(dir, 0700);
	/* The image, made offline from busybox-static (shared by runs: mkimage reuses it). */
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s/scripts/mkimage busybox /tmp/rollout-test-images >/dev/null",
		 src ? src : ".");
	int rc = system(cmd);
	if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
		fprintf(stderr, "test_pool_env: cannot make the test image; skipping\n");
		exit(77);
	}
	if (rc != 0)
		return -1;
	snprintf(image, sizeof(image), "/tmp/rollout-test-images/busybox");
	snprintf(config, sizeof(config), "%s/pool.yaml", dir);
	snprintf(snapdir, sizeof(snapdir), "%s/snapshots", dir);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", test_free_port((unsigned)getpid() + 4));
	snprintf(group, sizeof(group), "rollout-test-env-%d", (int)getpid());
	uid_base = 900000 + (unsigned)(getpid() % 1000) * 4000;
	return start_pool(1024, 8);
}

static int teardown(void **state)
{
	(void)state;
	stop_pool(SIGTERM);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint64_t open_from(const char *snap)
{
	struct pc_result r;
	assert_int_equal(pc_open_ex(&C, "box", snap, 0, &r, 20000), 0);
	if (r.status != 0)
		fail_msg("open %s: status %d (%s)", snap ? snap : "", r.status, r.message ? r.message : "");
	return r.sandbox;
}

/* Runs a shell line; returns its stdout (static buffer) and checks its exit code. */
static const char *sh(uint64_t box, int want_exit, const char *fmt, ...)
{
	static char out[65536];
	char line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	struct pc_result r;
	assert_int_equal(pc_exec(&C, box, line, NULL, NULL, 0, 20000, 0, &r, 30000), 0);
	if (r.status != 0)
		fail_msg("exec '%s': status %d (%s)", line, r.status, r.message ? r.message : "");
	snprintf(out, sizeof(out), "%.*s", (int)r.out_len, (const char *)r.out);
	if (want_exit >= 0 && r.exit_code != want_exit)
		fail_msg("exec '%s': exit %d, want %d; stdout: %s; stderr: %.*s", line, r.exit_code,
			 want_exit, out, (int)r.err_len, (const char *)r.err);
	return out;
}

static char *snapshot(uint64_t box, bool checkpoint, struct pc_result *keep)
{
	struct pc_result r;
	assert_int_equal(pc_snapshot(&C, box, checkpoint, &r, 30000), 0);
	if (r.status != 0)
		fail_msg("snapshot: status %d (%s)", r.status, r.message ? r.message : "");
	assert_non_null(r.snapshot);
	if (keep)
		*keep = r;
	return strdup(r.snapshot);
}

static void close_box(uint64_t box)
{
	struct pc_result r;
	assert_int_equal(pc_close_sandbox(&C, box, &r), 0);
	assert_int_equal(r.status, 0);
}

/* The image's root, writable by the sandbox, and the image itself untouched. */
static void test_writable_root(void **state)
{
	(void)state;
	uint64_t b = open_from(NULL);
	/* Layer 2 of the image deleted /etc/motd and replaced /opt/layer1 (whiteouts). */
	sh(b, 0, "test ! -e /etc/motd && test ! -e /opt/layer1 && test -f /etc/rollout-image");
	sh(b, 0, "echo made > /usr/local/bin/new && chmod 755 /usr/local/bin/new && echo x >> /etc/passwd");
	sh(b, 0, "mkdir -p /testbed/src && echo edit > /testbed/src/a.py && rm /bin/sed");
	const char *id = sh(b, 0, "id -u; stat -c %%u /usr/local/bin/new; stat -c %%u /");
	unsigned uid, owner, root_owner;
	assert_int_equal(sscanf(id, "%u %u %u", &uid, &owner, &root_owner), 3);
	assert_true(uid >= uid_base && uid < uid_base + 1000);
	assert_int_equal(owner, uid);
	assert_int_equal(root_owner, uid); /* the image's root user's files are the sandbox's */
	/* Still no privilege: nosuid, no capabilities, the host's files out of reach. */
	sh(b, 1, "cat /proc/1/environ >/dev/null 2>&1");
	/* A second sandbox sees the image as it was. */
	uint64_t b2 = open_from(NULL);
	sh(b2, 0, "test ! -e /usr/local/bin/new && test -x /bin/sed && ! grep -q '^x$' /etc/passwd");
	close_box(b);
	close_box(b2);
	/* Nothing written into the layer store. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "! find %s/state/layers -name new -o -name a.py | grep -q .", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_disk_limit(void **state)
{
	(void)state;
	uint64_t b = open_from(NULL), other = open_from(NULL);
	const char *out = sh(b, -1, "dd if=/dev/zero of=/big bs=1M count=64 2>&1; echo rc=$?");
	if (!strstr(out, "No space left"))
		fail_msg("a write past disk_mb: %s", out);
	sh(b, 0, "rm /big && echo fine > /small && cat /small");
	sh(other, 0, "dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null");
	close_box(b);
	close_box(other);
}

/* Content, modes, symlinks, deletions, empty and opaque directories survive snapshot -> fork;
 * forks do not see each other's writes, nor does the parent. */
static void test_snapshot_fork(void **state)
{
	(void)state;
	uint64_t parent = open_from(NULL);
	sh(parent, 0,
	   "mkdir -p /work/empty /work/d && printf 'hello\\n' > /work/d/f && chmod 750 /work/d/f && "
	   "ln -s d/f /work/link && rm /etc/rollout-image && rm -rf /usr/local/bin && "
	   "mkdir /usr/local/bin && echo new > /usr/local/bin/only && mkfifo /work/fifo");
	struct pc_result r;
	char *snap = snapshot(parent, false, &r);
	assert_true(r.snapshot_files >= 8);
	assert_true(r.snapshot_bytes >= 10);
	uint64_t f1 = open_from(snap), f2 = open_from(snap);
	for (int i = 0; i < 2; i++) {
		uint64_t f = i ? f2 : f1;
		sh(f, 0, "test \"$(cat /work/d/f)\" = hello && test \"$(stat -c %%a /work/d/f)\" = 750");
		sh(f, 0,
		   "test -L /work/link && test \"$(readlink /work/link)\" = d/f && test \"$(cat "
		   "/work/link)\" = hello");
		sh(f, 0, "test -d /work/empty && test -z \"$(ls -A /work/empty)\" && test -p /work/fifo");
		sh(f, 0, "test ! -e /etc/rollout-image && test \"$(ls /usr/local/bin)\" = only");
		sh(f, 0, "test \"$(stat -c %%u /work/d/f)\" = \"$(id -u)\"");
	}
	sh(f1, 0, "echo f1 > /work/d/f && echo mine > /work/f1only");
	sh(f2, 0, "test \"$(cat /work/d/f)\" = hello && test ! -e /work/f1only");
	sh(parent, 0, "test \"$(cat /work/d/f)\" = hello && test ! -e /work/f1only");
	/* A sandbox of the bare image has none of it. */
	uint64_t bare = open_from(NULL);
	sh(bare, 0, "test ! -e /work && test -f /etc/rollout-image");
	close_box(parent);
	close_box(f1);
	close_box(f2);
	close_box(bare);
	free(snap);
}

/* Whether the store's meta of snapshot id has this exact line. */
static bool meta_has(const char *id, const char *want)
{
	char path[400], line[128];
	snprintf(path, sizeof(path), "%s/%s/meta", snapdir, id);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	bool found = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		found |= strcmp(line, want) == 0;
	}
	fclose(f);
	return found;
}

/* s1 <- s2 <- s3: each adds and deletes; the last fork reads every layer right. */
static void test_chain(void **state)
{
	(void)state;
	uint64_t a = open_from(NULL);
	sh(a, 0, "echo 1 > /one && echo 1 > /gone");
	char *s1 = snapshot(a, false, NULL);
	uint64_t b = open_from(s1);
	sh(b, 0, "echo 2 > /two && rm /gone && echo 2 > /one");
	char *s2 = snapshot(b, false, NULL);
	uint64_t c = open_from(s2);
	sh(c, 0, "echo 3 > /three && rm /two");
	char *s3 = snapshot(c, false, NULL);
	uint64_t d = open_from(s3);
	sh(d, 0,
	   "test \"$(cat /one)\" = 2 && test ! -e /two && test ! -e /gone && test \"$(cat /three)\" = 3");
	assert_true(meta_has(s3, "depth 3"));
	close_box(a);
	close_box(b);
	close_box(c);
	close_box(d);
	free(s1);
	free(s2);
	free(s3);
}

/* The sandbox keeps writing three files in turn while it is snapshotted: frozen, the copy
 * holds one instant (the counters differ by at most one step). */
static void test_snapshot_while_writing(void **state)
{
	(void)state;
	uint64_t b = open_from(NULL);
	sh(b, 0,
	   "(i=0; while :; do i=$((i+1)); echo $i > /a; echo $i > /b; echo $i > /c; done) "
	   ">/dev/null 2>&1 & sleep 0.3");
	for (int round = 0; round < 3; round++) {
		struct pc_result r;
		char *snap = snapshot(b, false, &r);
		uint64_t f = open_from(snap);
		/* A file the shell had just truncated is empty: the writer was in it. */
		const char *v = sh(f, 0, "for n in a b c; do printf '%%s,' \"$(cat /$n)\"; done");
		long x[3];
		int empty = 0;
		const char *c = v;
		for (int i = 0; i < 3; i++) {
			char *end;
			x[i] = strtol(c, &end, 10);
			if (end == c)
				x[i] = -1, empty++;
			c = strchr(c, ',') + 1;
		}
		long hi = -1, lo = -1;
		bool order = true;
		for (int i = 0; i < 3; i++) {
			if (x[i] < 0)
				continue;
			order &= hi < 0 || x[i] <= lo;
			if (hi < 0)
				hi = x[i];
			lo = x[i];
		}
		if (empty > 1 || !order || hi - lo > 1)
			fail_msg("snapshot %d not one instant: %s", round, v);
		close_box(f);
		free(snap);
	}
	/* Thawed: it still runs. */
	long n1 = atol(sh(b, 0, "cat /a")), n2 = n1;
	for (int i = 0; i < 40 && n2 <= n1; i++) {
		usleep(50000);
		n2 = atol(sh(b, 0, "cat /a")); /* empty while the writer is in it: try again */
	}
	assert_true(n2 > n1);
	close_box(b);
}

/* A checkpoint after every step: each answer names it and the request it holds. */
static void test_checkpoints(void **state)
{
	(void)state;
	struct pc_result r;
	assert_int_equal(pc_open_ex(&C, "box", NULL, 2, &r, 20000), 0);
	assert_int_equal(r.status, 0);
	uint64_t b = r.sandbox;
	char last[64] = "";
	for (int step = 1; step <= 4; step++) {
		char line[64];
		snprintf(line, sizeof(line), "echo %d >> /steps", step);
		assert_int_equal(pc_exec(&C, b, line, NULL, NULL, 0, 20000, 0, &r, 30000), 0);
		assert_int_equal(r.status, 0);
		if (step % 2 == 0) {
			assert_non_null(r.checkpoint);
			assert_true(strcmp(r.checkpoint, last) != 0);
			snprintf(last, sizeof(last), "%s", r.checkpoint);
		} else {
			assert_null(r.checkpoint);
		}
	}
	uint64_t f = open_from(last);
	sh(f, 0, "test \"$(cat /steps | tr '\\n' ' ')\" = '1 2 3 4 '");
	close_box(b);
	close_box(f);
}

static int count_snapshots(void)
{
	DIR *d = opendir(snapdir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strncmp(e->d_name, "snap-", 5) == 0;
	if (d)
		closedir(d);
	return n;
}

static bool snapshot_exists(const char *id)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", snapdir, id);
	return access(p, F_OK) == 0;
}

/* Over budget the least recently used unused snapshot goes; one a live sandbox stands on
 * stays, and so does its parent. */
static void test_store_budget(void **state)
{
	(void)state;
	stop_pool(SIGTERM);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s/*", snapdir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(start_pool(3, 8), 0);
	uint64_t a = open_from(NULL);
	sh(a, 0, "dd if=/dev/urandom of=/blob bs=1M count=1 2>/dev/null");
	char *used = snapshot(a, false, NULL);
	uint64_t on_used = open_from(used); /* it stands on `used` */
	char *old[4];
	for (int i = 0; i < 4; i++) {
		sh(a, 0, "dd if=/dev/urandom of=/blob bs=1M count=1 2>/dev/null");
		old[i] = snapshot(a, false, NULL);
		usleep(1100000); /* last-use times a second apart */
	}
	/* The collector runs after a snapshot: give it a moment. */
	for (int i = 0; i < 100 && count_snapshots() > 2; i++)
		usleep(50000);
	assert_true(snapshot_exists(used));
	assert_false(snapshot_exists(old[0]));
	assert_true(snapshot_exists(old[3]));
	sh(on_used, 0, "test -s /blob");
	close_box(a);
	close_box(on_used);
	free(used);
	for (int i = 0; i < 4; i++)
		free(old[i]);
	stop_pool(SIGTERM);
	assert_int_equal(start_pool(1024, 2), 0);
}

/* snapshot_max_depth 2 (set by the test before): a third level is flattened. */
static void test_flatten(void **state)
{
	(void)state;
	uint64_t a = open_from(NULL);
	sh(a, 0, "echo 1 > /one && echo x > /gone");
	char *s1 = snapshot(a, false, NULL);
	uint64_t b = open_from(s1);
	sh(b, 0, "echo 2 > /two && rm /gone && rm /etc/rollout-image");
	char *s2 = snapshot(b, false, NULL);
	uint64_t c = open_from(s2);
	sh(c, 0, "echo 3 > /three");
	char *s3 = snapshot(c, false, NULL);
	assert_true(meta_has(s3, "depth 1") && meta_has(s3, "parent -"));
	uint64_t d = open_from(s3);
	sh(d, 0,
	   "test \"$(cat /one /two /three | tr '\\n' ' ')\" = '1 2 3 ' && test ! -e /gone && "
	   "test ! -e /etc/rollout-image && test -f /etc/passwd");
	close_box(a);
	close_box(b);
	close_box(c);
	close_box(d);
	free(s1);
	free(s2);
	free(s3);
}

/* The pool killed while it writes a snapshot: nothing half-written is visible, and the next
 * pool starts (its sandboxes' frozen group thawed and reaped). Then resume: the sandbox's
 * checkpoint opens on the new pool, sharing the store. */
static void test_killed_mid_snapshot_and_resume(void **state)
{
	(void)state;
	struct pc_result r;
	assert_int_equal(pc_open_ex(&C, "box", NULL, 1, &r, 20000), 0);
	uint64_t b = r.sandbox;
	char ckpt[64];
	assert_int_equal(pc_exec(&C, b, "echo one >> /log", NULL, NULL, 0, 20000, 0, &r, 30000), 0);
	assert_non_null(r.checkpoint);
	assert_int_equal(pc_exec(&C, b, "echo two >> /log", NULL, NULL, 0, 20000, 0, &r, 30000), 0);
	assert_non_null(r.checkpoint);
	snprintf(ckpt, sizeof(ckpt), "%s", r.checkpoint);
	/* A snapshot big enough to be caught in the act: 24 MiB of small files. */
	sh(b, 0,
	   "mkdir /many && cd /many && for i in $(seq 1 1500); do head -c 16384 /dev/urandom > f$i; done");
	int before = count_snapshots();
	/* Send the snapshot (its answer is not waited for: 5 ms) and kill the pool right after. */
	(void)pc_snapshot(&C, b, false, &r, 5);
	usleep(5000);
	stop_pool(SIGKILL);
	int after = count_snapshots();
	assert_true(after <= before + 1);
	/* Every snapshot visible is whole: its meta is there. */
	DIR *dd = opendir(snapdir);
	for (struct dirent *e; dd && (e = readdir(dd));) {
		if (strncmp(e->d_name, "snap-", 5))
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s/meta", snapdir, e->d_name);
		if (access(p, F_OK) != 0)
			fail_msg("snapshot %s visible without its meta", e->d_name);
	}
	if (dd)
		closedir(dd);
	assert_int_equal(start_pool(1024, 2), 0);
	uint64_t resumed = open_from(ckpt);
	sh(resumed, 0, "test \"$(cat /log | tr '\\n' ' ')\" = 'one two '");
	close_box(resumed);
}

static uint64_t open_profile(const char *profile)
{
	struct pc_result r;
	assert_int_equal(pc_open(&C, profile, &r, 20000), 0);
	if (r.status != 0)
		fail_msg("open %s: status %d (%s)", profile, r.status, r.message ? r.message : "");
	return r.sandbox;
}

/* Files anywhere in a writable root by path; relative paths from the working directory. */
static void test_files(void **state)
{
	(void)state;
	uint64_t b = open_from(NULL);
	struct pc_result r;
	assert_int_equal(pc_put(&C, b, "/usr/local/app.py", "print(1)\n", 9, &r), 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(pc_put(&C, b, "rel.txt", "rel", 3, &r), 0); /* WorkingDir is / */
	assert_int_equal(r.status, 0);
	sh(b, 0, "test \"$(cat /usr/local/app.py)\" = 'print(1)' && test \"$(cat /rel.txt)\" = rel");
	assert_int_equal(pc_get(&C, b, "/etc/rollout-image", 0, &r), 0);
	assert_int_equal(r.status, 0);
	assert_true(r.data_len > 0);
	/* Other mounts stay out of reach of file actions. */
	assert_int_equal(pc_get(&C, b, "/proc/1/environ", 0, &r), 0);
	assert_int_equal(r.status, rw_Status_PERMISSION_DENIED);
	assert_int_equal(pc_get(&C, b, "/../../etc/shadow", 0, &r), 0);
	assert_int_not_equal(r.status, rw_Status_OK);
	close_box(b);
}

/* erofs and squashfs files as roots: mounted once by the pool, in its own namespace. */
static void test_fs_images(void **state)
{
	(void)state;
	const char *names[] = { "ero", "sq" };
	for (int i = 0; i < 2; i++) {
		uint64_t b = open_profile(names[i]);
		sh(b, 0,
		   "test -f /etc/rollout-image && test ! -e /etc/motd && echo w > /usr/local/w && cat "
		   "/usr/local/w");
		close_box(b);
	}
	FILE *mi = fopen("/proc/self/mountinfo", "r");
	char line[2048];
	int seen = 0;
	while (mi && fgets(line, sizeof(line), mi))
		seen += strstr(line, dir) != NULL;
	if (mi)
		fclose(mi);
	assert_int_equal(seen, 0); /* the pool's mounts are its own */
}

static void test_bad_image_profile(void **state)
{
	(void)state;
	struct pc_result r;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(pc_open(&C, "bad", &r, 10000), 0);
		if (r.status != rw_Status_NO_CAPACITY)
			break;
		usleep(20000); /* still being looked at */
	}
	assert_int_equal(r.status, rw_Status_UNKNOWN_PROFILE);
	assert_non_null(r.message);
	if (!strstr(r.message, "no-such-tag") || !strstr(r.message, image))
		fail_msg("refusal names the image and tag: %s", r.message);
	/* The good profile serves. */
	uint64_t b = open_from(NULL);
	sh(b, 0, "true");
	close_box(b);
	/* A snapshot id that is not one, and one that does not exist. */
	assert_int_equal(pc_open_ex(&C, "box", "../../etc", 0, &r, 10000), 0);
	assert_int_equal(r.status, rw_Status_BAD_REQUEST);
	assert_int_equal(pc_open_ex(&C, "box", "snap-0000000000000000", 0, &r, 10000), 0);
	assert_int_equal(r.status, rw_Status_NOT_FOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_image_profile),
		cmocka_unit_test(test_writable_root),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_fs_images),
		cmocka_unit_test(test_disk_limit),
		cmocka_unit_test(test_snapshot_fork),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_snapshot_while_writing),
		cmocka_unit_test(test_checkpoints),
		cmocka_unit_test(test_store_budget),
		cmocka_unit_test(test_flatten),
		cmocka_unit_test(test_killed_mid_snapshot_and_resume),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
