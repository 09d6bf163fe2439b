/* rolloutd: the coordinator on a GPU node (common/daemon.c does the start-up).
 *   rolloutd --config FILE [--log-level LEVEL]
 *   rolloutd --check-config FILE | --config-reference
 *   rolloutd --plan --config FILE [--topology FILE.xml | --synthetic DESC] [--json] */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "pin.h"
#include "rollout/error.h"
#include "shard.h"

enum { OPT_PLAN = 0x2000, OPT_TOPOLOGY, OPT_SYNTHETIC, OPT_JSON };

static struct {
	bool plan, json;
	const char *xml, *synthetic;
} opts;

static int extra_opt(int id, const char *arg)
{
	switch (id) {
	case OPT_PLAN:
		opts.plan = true;
		return 0;
	case OPT_TOPOLOGY:
		opts.xml = arg;
		return 0;
	case OPT_SYNTHETIC:
		opts.synthetic = arg;
		return 0;
	case OPT_JSON:
		opts.json = true;
		return 0;
	}
	return 2;
}

/* rolloutd --plan: where every shard, ring and pool core would go on this (or a described)
 * machine, without starting anything. */
static int print_plan(const struct rd_cfg *cfg)
{
	struct pin_topo tp;
	int rc = pin_topo_load(&tp, opts.xml, opts.synthetic);
	if (rc) {
		fprintf(stderr, "rolloutd: cannot load the topology %s: %s\n",
			opts.xml         ? opts.xml
			: opts.synthetic ? opts.synthetic
					 : "of this machine",
			rollout_strerror(rc));
		return 1;
	}
	const char *ids[64];
	struct pin_request rq;
	rd_config_pin_request(cfg, ids, &rq);
	struct pin_plan plan;
	char err[256];
	rc = pin_plan_make(&tp, &rq, &plan, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rolloutd: %s\n", err);
		pin_topo_free(&tp);
		return 1;
	}
	if (opts.json)
		pin_plan_print_json(&plan, stdout);
	else
		pin_plan_print_table(&plan, &tp, stdout);
	pin_plan_free(&plan);
	pin_topo_free(&tp);
	return 0;
}

static int instead(void *cfg)
{
	if ((opts.xml || opts.synthetic || opts.json) && !opts.plan) {
		fprintf(stderr, "rolloutd: --topology, --synthetic and --json go with --plan\n");
		return 2;
	}
	if (opts.xml && opts.synthetic) {
		fprintf(stderr, "rolloutd: --topology and --synthetic exclude each other\n");
		return 2;
	}
	return opts.plan ? print_plan(cfg) : -1;
}

static void describe(const void *p, FILE *f)
{
	const struct rd_cfg *c = p;
	fprintf(f, "%u pool entr%s, %u shard%s", c->pools_count, c->pools_count == 1 ? "y" : "ies", c->shards,
		c->shards == 1 ? "" : "s");
}

static bool wants_curve(const void *p)
{
	return ((const struct rd_cfg *)p)->curve_secret_key != NULL;
}

DAEMON_LIFECYCLE(rd, rd, rd_config, rd_cfg)

int main(int argc, char **argv)
{
	static const struct option extra[] = { { "plan", no_argument, NULL, OPT_PLAN },
					       { "topology", required_argument, NULL, OPT_TOPOLOGY },
					       { "synthetic", required_argument, NULL, OPT_SYNTHETIC },
					       { "json", no_argument, NULL, OPT_JSON },
					       { 0 } };
	static const struct daemon_spec spec = {
		.prog = "rolloutd",
		.usage =
		    "       rolloutd --plan --config FILE [--topology FILE.xml | --synthetic DESC] [--json]\n"
		    "Takes rollout requests from trainers (librollout) through shared-memory rings and\n"
		    "pipelines them to rollout-pool daemons. SIGTERM drains in-flight work and exits.\n",
		DAEMON_GLUE,
		.describe = describe,
		.reference = rd_config_reference,
		.wants_curve = wants_curve,
		.extra = extra,
		.extra_opt = extra_opt,
		.instead = instead,
	};
	return daemon_main(argc, argv, &spec);
}
