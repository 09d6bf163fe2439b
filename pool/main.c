/* rollout-pool: serves sandboxes to coordinators over ZeroMQ. Start-up, the command line
 * and exit statuses are common/daemon.c's; this file says what is the pool's. */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "pool.h"

static int load(const char *path, void **cfg, char *err, size_t errsz)
{
	return pool_config_load(path, (struct pool_cfg **)cfg, err, errsz);
}

static void free_cfg(void *cfg)
{
	pool_config_free(cfg);
}

static void describe(const void *cfg, FILE *f)
{
	const struct pool_cfg *c = cfg;
	fprintf(f, "%u profile%s", c->profiles_count, c->profiles_count == 1 ? "" : "s");
}

static bool wants_curve(const void *cfg)
{
	return ((const struct pool_cfg *)cfg)->curve_secret_key != NULL;
}

static int run(void *cfg, atomic_int *stop, char *err, size_t errsz)
{
	struct pool *p;
	int rc = pool_create(&p, cfg, err, errsz);
	if (rc)
		return rc;
	rc = pool_run(p, stop, err, errsz);
	pool_destroy(p);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct daemon_spec spec = {
		.prog = "rollout-pool",
		.usage =
		    "Keeps warm, isolated sandboxes per environment profile and runs actions in them for\n"
		    "rolloutd coordinators over ZeroMQ. SIGTERM drains running actions and exits.\n",
		.load = load,
		.free_cfg = free_cfg,
		.describe = describe,
		.reference = pool_config_reference,
		.wants_curve = wants_curve,
		.run = run,
	};
	return daemon_main(argc, argv, &spec);
}
