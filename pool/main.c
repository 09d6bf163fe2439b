/* rollout-pool: serves sandboxes to coordinators over ZeroMQ. Start-up, the command line
 * and exit statuses are common/daemon.c's; this file says what is the pool's. */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "pool.h"

static void describe(const void *cfg, FILE *f)
{
	const struct pool_cfg *c = cfg;
	fprintf(f, "%u profile%s", c->profiles_count, c->profiles_count == 1 ? "" : "s");
}

static bool wants_curve(const void *cfg)
{
	return ((const struct pool_cfg *)cfg)->curve_secret_key != NULL;
}

DAEMON_LIFECYCLE(pool, pool, pool_config, pool_cfg)

int main(int argc, char **argv)
{
	static const struct daemon_spec spec = {
		.prog = "rollout-pool",
		.usage =
		    "Keeps warm, isolated sandboxes per environment profile and runs actions in them for\n"
		    "rolloutd coordinators over ZeroMQ. SIGTERM drains running actions and exits.\n",
		DAEMON_GLUE,
		.describe = describe,
		.reference = pool_config_reference,
		.wants_curve = wants_curve,
	};
	return daemon_main(argc, argv, &spec);
}
