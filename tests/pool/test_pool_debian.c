/* A real distribution as an image: Debian bookworm made by mmdebstrap (scripts/mkimage
 * debian) and served by rollout-pool as a writable root. Python runs; a package installed
 * the way pip installs one (into /usr/local/lib/python3.X/dist-packages) imports; the image
 * user setting `user: agent` gives the sandbox agent's home instead of root's; a snapshot
 * carries the installed package to a fork. Root only; skipped (77) when the Debian mirror
 * does not answer (mkimage says so). */
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

#include "../common/test_port.h"
#include "client.h"
#include "rollout_wire.h"

static char pool_bin[512], config[400], endpoint[64], dir[256], images[600];
static pid_t pool_pid;
static struct pc C;

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_pool_debian: needs root; skipping\n");
		exit(77);
	}
	const char *bin = getenv("ROLLOUT_BINARY_DIR"), *src = getenv("ROLLOUT_SOURCE_DIR");
	snprintf(pool_bin, sizeof(pool_bin), "%s/pool/rollout-pool", bin ? bin : ".");
	/* Made once per build directory: mkimage reuses a complete image. */
	snprintf(images, sizeof(images), "%s/tests/images/images", bin ? bin : ".");
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "%s/scripts/mkimage debian %s >/dev/null", src ? src : ".", images);
	int rc = system(cmd);
	if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
		fprintf(stderr,
			"test_pool_debian: no Debian image (mirror or mmdebstrap missing); skipping\n");
		exit(77);
	}
	if (rc != 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/rollout-test-debian-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(config, sizeof(config), "%s/pool.yaml", dir);
	snprintf(endpoint, sizeof(endpoint), "tcp://127.0.0.1:%d", test_free_port((unsigned)getpid() + 5));
	FILE *f = fopen(config, "w");
	if (!f)
		return -1;
	unsigned base = 950000 + (unsigned)(getpid() % 1000) * 100;
	fprintf(f,
		"pool:\n"
		"  listen: %s\n"
		"  cgroup: rollout-test-debian-%d\n"
		"  state_dir: %s/state\n"
		"  profiles:\n"
		"    - name: deb\n"
		"      image: oci:%s/debian:latest\n"
		"      disk_mb: 128\n"
		"      memory_mb: 512\n"
		"      warm: 1\n"
		"      uid_base: %u\n"
		"      uid_count: 50\n"
		"    - name: agent\n"
		"      image: oci:%s/debian:latest\n"
		"      user: agent\n"
		"      workdir: /home/agent\n"
		"      uid_base: %u\n"
		"      uid_count: 50\n",
		endpoint, (int)getpid(), dir, images, base, images, base + 50);
	fclose(f);
	pool_pid = pc_spawn_pool(pool_bin, config, endpoint, 60000);
	if (pool_pid < 0)
		return -1;
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
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static uint64_t open_box(const char *profile, const char *snap)
{
	struct pc_result r;
	/* The first open waits while the image is unpacked (tens of MB). */
	assert_int_equal(pc_open_ex(&C, profile, snap, 0, &r, 120000), 0);
	if (r.status != 0)
		fail_msg("open %s: status %d (%s)", profile, r.status, r.message ? r.message : "");
	return r.sandbox;
}

static const char *sh(uint64_t box, const char *line)
{
	static char out[8192];
	struct pc_result r;
	assert_int_equal(pc_exec(&C, box, line, NULL, NULL, 0, 30000, 0, &r, 60000), 0);
	if (r.status != 0 || r.exit_code != 0)
		fail_msg("'%s': status %d exit %d: %.*s %.*s", line, r.status, r.exit_code, (int)r.out_len,
			 (const char *)r.out, (int)r.err_len, (const char *)r.err);
	snprintf(out, sizeof(out), "%.*s", (int)r.out_len, (const char *)r.out);
	return out;
}

static void test_python_and_packages(void **state)
{
	(void)state;
	uint64_t b = open_box("deb", NULL);
	const char *v = sh(b, "python3 -c 'import sys; print(sys.version_info[0])'");
	assert_string_equal(v, "3\n");
	/* What pip install does for a pure-Python package: files under /usr/local. */
	sh(b, "d=$(python3 -c 'import site; print(site.getsitepackages()[0])') && mkdir -p $d/toy && "
	      "printf 'VALUE = 42\\n' > $d/toy/__init__.py");
	assert_string_equal(sh(b, "cd / && python3 -c 'import toy; print(toy.VALUE)'"), "42\n");
	struct pc_result r;
	assert_int_equal(pc_snapshot(&C, b, false, &r, 60000), 0);
	assert_int_equal(r.status, 0);
	char snap[64];
	snprintf(snap, sizeof(snap), "%s", r.snapshot);
	uint64_t f = open_box("deb", snap);
	assert_string_equal(sh(f, "python3 -c 'import toy; print(toy.VALUE)'"), "42\n");
	uint64_t fresh = open_box("deb", NULL);
	sh(fresh, "! python3 -c 'import toy' 2>/dev/null");
	pc_close_sandbox(&C, b, &r);
	pc_close_sandbox(&C, f, &r);
	pc_close_sandbox(&C, fresh, &r);
}

static void test_image_user(void **state)
{
	(void)state;
	uint64_t b = open_box("agent", NULL);
	/* The agent user's files are the sandbox's; root's are not. */
	assert_string_equal(sh(b, "pwd"), "/home/agent\n");
	sh(b, "touch /home/agent/mine && test \"$(stat -c %u /home/agent)\" = \"$(id -u)\"");
	sh(b, "! touch /usr/local/not-mine 2>/dev/null");
	struct pc_result r;
	pc_close_sandbox(&C, b, &r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_python_and_packages),
		cmocka_unit_test(test_image_user),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
