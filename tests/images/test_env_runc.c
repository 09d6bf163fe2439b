/* The images of scripts/mkimage under the stock runtime, through the runc baseline of
 * `rollout-bench env` (bench/env_runc.c): the busybox image runs, its second layer's
 * whiteouts hold, the demo's bug fails its tests and the documented sed fixes it, and every
 * failure is reported with no container left behind. Needs root, runc and umoci (exits 77
 * otherwise). Usage: test_env_runc MKIMAGE OUTDIR */
#include <dirent.h>
#include <setjmp.h>
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

#include "env_runc.h"

static char busybox[4096], demo[4096];
static char workdir[] = "/tmp/test_env_runc.XXXXXX";

static int sh(const char *cmd)
{
	int st = system(cmd);
	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Containers of this process that runc still knows (its ids carry our pid). */
static int leftovers(void)
{
	char prefix[64];
	int n = 0;
	snprintf(prefix, sizeof(prefix), "rollout-bench-%ld-", (long)getpid());
	DIR *d = opendir("/run/runc");
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void test_busybox_runs(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/sh", "-c", "test -x /bin/busybox", NULL };
	uint64_t s[3] = { 0 };
	assert_int_equal(runc_baseline(busybox, "latest", workdir, argv, 3, s), 0);
	for (int i = 0; i < 3; i++)
		assert_true(s[i] > 0);
	print_message("runc run of busybox's sh: %llu %llu %llu us\n", (unsigned long long)s[0],
		      (unsigned long long)s[1], (unsigned long long)s[2]);
	/* The bundle is reused: a second call does not unpack again (and so is not slower). */
	assert_int_equal(runc_baseline(busybox, "latest", workdir, argv, 1, s), 0);
	assert_int_equal(leftovers(), 0);
}

/* Layer 2 deleted a file and a directory of layer 1 and added its own; agent owns its home. */
static void test_busybox_layers(void **state)
{
	(void)state;
	const char *argv[] = {
		"/bin/sh", "-c",
		"set -e; test ! -e /etc/motd; test ! -e /opt/layer1; test -f /etc/rollout-image;"
		" test \"$(hello)\" = 'hello from busybox'; test \"$(stat -c %u /home/agent)\" = 1000;"
		" test \"$(id -u agent)\" = 1000; test \"$PATH\" = /usr/local/bin:/usr/bin:/bin;"
		" test \"$(pwd)\" = /; test -k /tmp",
		NULL
	};
	uint64_t s[1];
	assert_int_equal(runc_baseline(busybox, "latest", workdir, argv, 1, s), 0);
}

/* The demo's tests fail as shipped and pass after the one-line fix mkimage documents (as a
 * uid that owns nothing in the image: check_mkimage.sh). */
static void test_demo_fix(void **state)
{
	(void)state;
	const char *argv[] = { "/bin/sh", "-c",
			       "test \"$(pwd)\" = /testbed && ! sh run_tests.sh >/dev/null &&"
			       " sed -i 's/-lt/-le/' /testbed/calc.sh && sh run_tests.sh >/dev/null",
			       NULL };
	uint64_t s[1];
	assert_int_equal(runc_baseline(demo, "latest", workdir, argv, 1, s), 0);
	/* The fix went to the bundle, not the image: a fresh unpack fails again. */
	const char *again[] = { "/bin/sh", "-c", "sh run_tests.sh >/dev/null", NULL };
	char wd2[sizeof(workdir) + 8];
	snprintf(wd2, sizeof(wd2), "%s/fresh", workdir);
	assert_int_equal(runc_baseline(demo, "latest", wd2, again, 1, s), -1);
	assert_int_equal(runc_baseline_clean(wd2), 0);
	assert_int_equal(rmdir(wd2), 0);
}

static void test_failures(void **state)
{
	(void)state;
	const char *fail[] = { "/bin/sh", "-c", "exit 3", NULL };
	uint64_t s[2] = { 0 };
	assert_int_equal(runc_baseline(busybox, "latest", workdir, fail, 2, s), -1);
	assert_true(s[0] > 0);
	assert_int_equal(leftovers(), 0);
	const char *missing[] = { "/no/such/program", NULL };
	assert_int_equal(runc_baseline(busybox, "latest", workdir, missing, 1, s), -1);
	assert_int_equal(leftovers(), 0);
	const char *ok[] = { "/bin/true", NULL };
	assert_int_equal(runc_baseline("/nonexistent/layout", "latest", workdir, ok, 1, s), -1);
	assert_int_equal(runc_baseline(busybox, "no-such-tag", workdir, ok, 1, s), -1);
	assert_int_equal(runc_baseline(busybox, "latest", workdir, ok, 0, NULL), 0);
}

static int teardown(void **state)
{
	(void)state;
	int rc = runc_baseline_clean(workdir);
	if (rc || rmdir(workdir)) {
		/* A failed test may leave its own subdirectory: remove all, and fail. */
		char cmd[sizeof(workdir) + 16];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
		sh(cmd);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_env_runc MKIMAGE OUTDIR\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "skip: needs root (runc with cgroups and namespaces)\n");
		return 77;
	}
	if (sh("command -v runc >/dev/null && command -v umoci >/dev/null") != 0) {
		fprintf(stderr, "skip: runc or umoci is missing (Debian packages runc, umoci)\n");
		return 77;
	}
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "'%s' demo '%s' >/dev/null", argv[1], argv[2]);
	int rc = sh(cmd);
	if (rc == 77) {
		fprintf(stderr, "skip: mkimage cannot make the images (see above)\n");
		return 77;
	}
	if (rc != 0) {
		fprintf(stderr, "mkimage demo %s failed: %d\n", argv[2], rc);
		return 1;
	}
	snprintf(busybox, sizeof(busybox), "%s/busybox", argv[2]);
	snprintf(demo, sizeof(demo), "%s/demo", argv[2]);
	if (!mkdtemp(workdir)) {
		perror("mkdtemp");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_busybox_runs),
		cmocka_unit_test(test_busybox_layers),
		cmocka_unit_test(test_demo_fix),
		cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
