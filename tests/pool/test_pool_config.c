/* The pool's configuration tables alone (pool/config.c): defaults of a minimal file,
 * ranges, the checks a range cannot say, the secret-key file rule, and
 * --config-reference against the tables row by row. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "config.h"
#include "prom.h"

static char dir[256];

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	struct pool_cfg *c;
	char err[1024];
	const char *path =
	    write_file("min.yaml", "pool:\n  profiles: [{name: a}, {name: n, type: noop}]\n", 0600);
	assert_int_equal(pool_config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c->identity, "rollout-pool");
	assert_string_equal(c->listen, "tcp://127.0.0.1:7710");
	assert_null(c->metrics);
	assert_string_equal(c->cgroup, "rollout-pool");
	assert_int_equal(c->lease_ms, 10000);
	assert_int_equal(c->max_inflight, 4096);
	assert_int_equal(c->result_cache_s, 60);
	assert_int_equal(c->max_message_mb, 64);
	assert_int_equal(c->create_timeout_ms, 10000);
	assert_null(c->curve_secret_key);
	assert_int_equal(c->profiles_count, 2);
	const struct pool_profile_cfg *p = &c->profiles[0];
	assert_int_equal(p->type, SBX_ISOLATED);
	assert_string_equal(p->root, "system");
	assert_string_equal(p->hostname, "sandbox");
	assert_int_equal(p->warm, 0);
	assert_int_equal(p->max, 256);
	assert_int_equal(p->workdir_mb, 64);
	assert_int_equal(p->memory_mb, 512);
	assert_int_equal(p->pids, 128);
	assert_int_equal(p->cpu_percent, 0);
	assert_int_equal(p->timeout_ms, 30000);
	assert_int_equal(p->max_timeout_ms, 600000);
	/* The latency histograms reach the longest exec a default profile allows. */
	assert_true(prom_bucket_s[PROM_NBUCKET - 1] * 1000 >= p->max_timeout_ms);
	assert_int_equal(p->output_cap, 65536);
	assert_int_equal(p->max_output_cap, 4u << 20);
	assert_int_equal(p->nofile, 256);
	assert_int_equal(p->file_mb, 64);
	assert_int_equal(p->uid_base, 200000);
	assert_int_equal(p->uid_count, 50000);
	assert_int_equal(c->profiles[1].type, SBX_NOOP);
	/* The source path is absolute: it is what sandboxes get masked. */
	assert_true(c->source && c->source[0] == '/');
	struct sbx_profile sp;
	pool_profile_to_sbx(p, &sp);
	assert_string_equal(sp.env[0], "PATH=/usr/local/bin:/usr/bin:/bin");
	pool_config_free(c);
}

static void expect_error(const char *text, const char *want)
{
	struct pool_cfg *c = NULL;
	char err[1024] = "";
	const char *path = write_file("bad.yaml", text, 0600);
	int rc = pool_config_load(path, &c, err, sizeof(err));
	if (rc == 0 || !strstr(err, want) || !strstr(err, path))
		fail_msg("want an error with '%s', got rc %d: %s", want, rc, err);
	assert_null(c);
}

static void test_ranges_and_checks(void **state)
{
	(void)state;
	expect_error("pool:\n  lease_ms: 50\n  profiles: [{name: a}]\n", ":2: pool.lease_ms: 50 is outside");
	expect_error("pool:\n  profiles: [{name: a, nofile: 8}]\n", "pool.profiles[0].nofile: 8 is outside");
	expect_error("pool:\n  profiles:\n    - name: a\n    - name: b\n      uid_base: 10\n",
		     "pool.profiles[1].uid_base: 10 is outside the accepted range 1000");
	expect_error("pool:\n  profiles: [{name: a, warm: 9, max: 2}]\n", "warm 9 is above max 2");
	expect_error("pool:\n  profiles: [{name: a, timeout_ms: 9, max_timeout_ms: 5}]\n",
		     "timeout_ms above max_timeout_ms");
	expect_error("pool:\n  profiles: [{warm: 1}]\n", "name is required");
	expect_error("pool:\n  profiles: []\n", "pool.profiles: needs at least 1 entry");
	expect_error("pool:\n  identity: x\n", "pool.profiles: needs at least 1 entry");
	expect_error("rolloutd: {}\n", "pool");
	expect_error("pool:\n  curve_allowed: [\"0123456789012345678901234567890123456789\"]\n  profiles: "
		     "[{name: a}]\n",
		     "needs pool.curve_secret_key");
	expect_error("pool:\n  profiles: [{name: a, type: container}]\n", "Invalid");
}

/* Issue 10 #18: a secret key in a file other users can reach is refused. */
static void test_secret_file_mode(void **state)
{
	(void)state;
	char text[512];
	snprintf(text, sizeof(text),
		 "pool:\n  curve_secret_key: \"%s\"\n  curve_allowed: [\"%s\"]\n  profiles: [{name: a}]\n",
		 "0123456789012345678901234567890123456789", "0123456789012345678901234567890123456789");
	struct pool_cfg *c;
	char err[1024];
	chmod(dir, 0755); /* others can walk to it: only the file's mode protects it */
	const char *path = write_file("secret.yaml", text, 0644);
	assert_int_equal(pool_config_load(path, &c, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "other users can read it"));
	path = write_file("secret.yaml", text, 0640);
	assert_int_equal(pool_config_load(path, &c, err, sizeof(err)), -EACCES);
	path = write_file("secret.yaml", text, 0600);
	assert_int_equal(pool_config_load(path, &c, err, sizeof(err)), 0);
	pool_config_free(c);
	/* Readable, but in a directory nobody else may enter: private. */
	chmod(dir, 0700);
	path = write_file("secret.yaml", text, 0644);
	assert_int_equal(pool_config_load(path, &c, err, sizeof(err)), 0);
	pool_config_free(c);
}

/* Every row of both tables appears in the reference with its default and range. */
static void test_reference_matches_tables(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	pool_config_reference(f);
	fclose(f);
	const struct cfg_key *pk, *fk;
	size_t np, nf;
	pool_config_tables(&pk, &np, &fk, &nf);
	assert_true(np >= 12 && nf >= 19);
	for (int t = 0; t < 2; t++) {
		const struct cfg_key *k = t ? fk : pk;
		for (size_t i = 0; i < (t ? nf : np); i++) {
			char want[256];
			snprintf(want, sizeof(want), "| `%s.%s` |", t ? "pool.profiles[]" : "pool",
				 k[i].name);
			const char *row = strstr(text, want);
			if (!row)
				fail_msg("reference lacks %s", want);
			const char *eol = strchr(row, '\n');
			if (k[i].def) {
				snprintf(want, sizeof(want), "`%s`", k[i].def);
				const char *d = strstr(row, want);
				assert_true(d && d < eol);
			}
			if (k[i].type == CFG_U32) {
				snprintf(want, sizeof(want), "%llu..%llu", (unsigned long long)k[i].lo,
					 (unsigned long long)k[i].hi);
				const char *r = strstr(row, want);
				assert_true(r && r < eol);
			}
			const char *doc = strstr(row, k[i].doc);
			assert_true(doc && doc < eol);
		}
	}
	free(text);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/rollout-pool-config-%d", (int)getpid());
	return mkdir(dir, 0700);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ranges_and_checks),
		cmocka_unit_test(test_secret_file_mode),
		cmocka_unit_test(test_reference_matches_tables),
	};
	return cmocka_run_group_tests_name("pool_config", tests, setup, teardown);
}
