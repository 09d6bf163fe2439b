/* The sandbox root `system` (the default): a real rollout-pool whose sandboxes must find
 * the host's programs and /etc/passwd but none of the host's data. Marker files go into
 * /root, /home, /srv, /opt, /mnt, /media, /work, the project checkout and the pool's config
 * directory (under /etc, which sandboxes do get); no sandbox may see one, while a profile
 * with `root: /` does. Needs root (namespaces, cgroups): exits 77 otherwise. */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "rollout_wire.h"

#define MAX_MARKERS 16

static char pool_bin[512], confdir[128], config[256], endpoint[64], group[64];
static char markers[MAX_MARKERS][600];
static int nmarkers;
static pid_t pool_pid;
static struct pc C;

static void add_marker(const char *dir)
{
	struct stat st;
	if (!dir || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || nmarkers == MAX_MARKERS)
		return;
	char *m = markers[nmarkers];
	snprintf(m, sizeof(markers[0]), "%s/.rollout-root-marker-%d", dir, (int)getpid());
	FILE *f = fopen(m, "w");
	if (!f)
		return; /* a read-only directory cannot leak a marker either */
	fputs("host data\n", f);
	fclose(f);
	nmarkers++;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_pool_root: needs root (namespaces, cgroups); skipping\n");
		exit(77);
	}
	const char *bin = getenv("ROLLOUT_BINARY_DIR");
	snprintf(pool_bin, sizeof(pool_bin), "%s/pool/rollout-pool", bin ? bin : ".");
	/* Under /etc: the one place of the config that a sandbox gets /etc of the host. */
	snprintf(confdir, sizeof(confdir), "/etc/rollout-test-root-%d", (int)getpid());
	snprintf(config, sizeof(config), "%s/pool.yaml", confdir);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", 20000 + (int)((getpid() + 7919) % 20000));
	snprintf(group, sizeof(group), "rollout-test-root-%d", (int)getpid());
	if (mkdir(confdir, 0755) < 0 && errno != EEXIST)
		return -1;
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	fprintf(f,
		"pool:\n"
		"  listen: %s\n"
		"  cgroup: %s\n"
		"  profiles:\n"
		"    - {name: default, warm: 1, max: 8, workdir_mb: 16, memory_mb: 256, pids: 64,\n"
		"       uid_base: 710000, uid_count: 1000}\n"
		"    - {name: host, root: /, warm: 0, max: 4, workdir_mb: 16, memory_mb: 256, pids: 64,\n"
		"       uid_base: 711000, uid_count: 1000}\n",
		endpoint, group);
	fclose(f);
	const char *dirs[] = { "/root", "/home", "/srv", "/opt", "/mnt", "/media", "/work", confdir };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		add_marker(dirs[i]);
	add_marker(getenv("ROLLOUT_SOURCE_DIR"));
	pool_pid = pc_spawn_pool(pool_bin, config, endpoint, 10000);
	if (pool_pid < 0) {
		fprintf(stderr, "test_pool_root: cannot start %s: %d\n", pool_bin, pool_pid);
		return -1;
	}
	return pc_connect(&C, endpoint, "tester", 10000);
}

static int teardown(void **state)
{
	(void)state;
	pc_close(&C);
	if (pool_pid > 0) {
		kill(pool_pid, SIGTERM);
		waitpid(pool_pid, NULL, 0);
	}
	for (int i = 0; i < nmarkers; i++)
		unlink(markers[i]);
	unlink(config);
	rmdir(confdir);
	char d[128];
	const char *ctl[] = { "pids", "memory", "cpu" };
	for (int i = 0; i < 3; i++) {
		snprintf(d, sizeof(d), "/sys/fs/cgroup/%s/%s", ctl[i], group);
		rmdir(d);
	}
	return 0;
}

static uint64_t open_box(const char *profile)
{
	struct pc_result r;
	assert_int_equal(pc_open(&C, profile, &r, 10000), 0);
	if (r.status != 0)
		fail_msg("open %s: status %d (%s)", profile, r.status, r.message ? r.message : "");
	return r.sandbox;
}

static struct pc_result sh(uint64_t box, const char *cmd)
{
	struct pc_result r;
	int rc = pc_exec(&C, box, cmd, NULL, NULL, 0, 10000, 0, &r, 15000);
	if (rc)
		fail_msg("exec '%s': rc %d", cmd, rc);
	assert_int_equal(r.status, 0);
	return r;
}

static bool out_has(const struct pc_result *r, const char *s)
{
	return memmem(r->out, r->out_len, s, strlen(s)) != NULL;
}

static void close_box(uint64_t box)
{
	struct pc_result r;
	assert_int_equal(pc_close_sandbox(&C, box, &r), 0);
}

/* Every marker is absent, through a command and through a file get. */
static void test_host_data_hidden(void **state)
{
	(void)state;
	assert_true(nmarkers >= 4); /* /root, /home, /srv and the config directory at least */
	uint64_t b = open_box("default");
	for (int i = 0; i < nmarkers; i++) {
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "test -e '%.600s' && echo SEEN || echo absent", markers[i]);
		struct pc_result r = sh(b, cmd);
		if (!out_has(&r, "absent"))
			fail_msg("the sandbox sees the host's %s", markers[i]);
		assert_int_equal(pc_get(&C, b, markers[i], 0, &r), 0);
		if (r.status == 0)
			fail_msg("the sandbox reads the host's %s", markers[i]);
	}
	/* Home and data directories exist, empty. */
	struct pc_result r = sh(b, "ls -A /root /home /srv /opt /mnt /media /run /etc/rolloutd 2>/dev/null | "
				   "grep -v ':$' | grep -c . ; echo end");
	assert_true(out_has(&r, "0\nend"));
	/* The pool's config and the secrets of /etc are empty if present at all. */
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "cat %s /etc/shadow /etc/gshadow 2>/dev/null | wc -c", config);
	r = sh(b, cmd);
	assert_true(out_has(&r, "0\n"));
	close_box(b);
}

/* What the sandbox needs of the host is there: a shell, python3, /etc/passwd; all read-only. */
static void test_system_works(void **state)
{
	(void)state;
	uint64_t b = open_box("default");
	struct pc_result r = sh(b, "/bin/sh -c 'echo shell-ok'; python3 -c 'print(6*7)'; "
				   "grep -c '^root:' /etc/passwd; echo hi > /tmp/w && cat /tmp/w");
	if (!out_has(&r, "shell-ok\n42\n1\n") || !out_has(&r, "hi\n"))
		fail_msg("system root: %.*s / %.*s", (int)r.out_len, (const char *)r.out, (int)r.err_len,
			 (const char *)r.err);
	r = sh(b,
	       "touch /usr/x /etc/x /x /root/x 2>/dev/null; ls /usr/x /etc/x /x /root/x 2>/dev/null | wc -l");
	assert_true(out_has(&r, "0\n"));
	close_box(b);
}

/* `root: /` is still the host's root, markers included: the difference is the profile's. */
static void test_host_root_profile(void **state)
{
	(void)state;
	/* The one in the config directory: sandbox uids cannot enter /root anyway. */
	const char *m = NULL;
	for (int i = 0; i < nmarkers; i++)
		if (strncmp(markers[i], confdir, strlen(confdir)) == 0)
			m = markers[i];
	assert_non_null(m);
	uint64_t b = open_box("host");
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "test -e '%.600s' && echo SEEN", m);
	struct pc_result r = sh(b, cmd);
	assert_true(out_has(&r, "SEEN"));
	close_box(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_data_hidden),
		cmocka_unit_test(test_system_works),
		cmocka_unit_test(test_host_root_profile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
