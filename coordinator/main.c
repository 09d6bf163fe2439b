/* rolloutd: the coordinator on a GPU node.
 *   rolloutd --config FILE [--log-level LEVEL]
 *   rolloutd --check-config FILE */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "log.h"
#include "pin.h"
#include "rollout/error.h"
#include "shard.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* rolloutd --plan: where every shard, ring and pool core would go on this (or a described)
 * machine, without starting anything. */
static int print_plan(const struct rd_cfg *cfg, const char *xml, const char *synthetic, bool json)
{
	struct pin_topo tp;
	int rc = pin_topo_load(&tp, xml, synthetic);
	if (rc) {
		fprintf(stderr, "rolloutd: cannot load the topology %s: %s\n",
			xml         ? xml
			: synthetic ? synthetic
				    : "of this machine",
			rollout_strerror(rc));
		return 1;
	}
	const char *ids[64];
	for (unsigned i = 0; i < cfg->gpus_count && i < 64; i++)
		ids[i] = cfg->gpus[i].pci_bus_id;
	struct pin_request rq = { .gpu_bus_ids = ids,
				  .ngpus = cfg->gpus_count,
				  .reserved_cpus = cfg->reserved_cpus };
	struct pin_plan plan;
	char err[256];
	rc = pin_plan_make(&tp, &rq, &plan, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rolloutd: %s\n", err);
		pin_topo_free(&tp);
		return 1;
	}
	if (json)
		pin_plan_print_json(&plan, stdout);
	else
		pin_plan_print_table(&plan, &tp, stdout);
	pin_plan_free(&plan);
	pin_topo_free(&tp);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rolloutd --config FILE [--log-level debug|info|warn|error]\n"
		   "       rolloutd --check-config FILE\n"
		   "       rolloutd --plan --config FILE [--topology FILE.xml | --synthetic DESC] [--json]\n"
		   "Takes rollout requests from trainers (librollout) through shared-memory rings and\n"
		   "pipelines them to rollout-pool daemons. SIGTERM drains in-flight work and exits.\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = { { "config", required_argument, NULL, 'c' },
					    { "check-config", required_argument, NULL, 'k' },
					    { "log-level", required_argument, NULL, 'l' },
					    { "help", no_argument, NULL, 'h' },
					    { "version", no_argument, NULL, 'V' },
					    { "plan", no_argument, NULL, 'P' },
					    { "topology", required_argument, NULL, 'T' },
					    { "synthetic", required_argument, NULL, 'S' },
					    { "json", no_argument, NULL, 'J' },
					    { 0 } };
	bool plan = false, json = false;
	const char *xml = NULL, *synthetic = NULL;
	const char *config = NULL;
	bool check = false;
	int c;
	rlog_set_prog("rolloutd");
	while ((c = getopt_long(argc, argv, "c:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'k':
			config = optarg;
			check = true;
			break;
		case 'l':
			if (rlog_set_level(optarg)) {
				fprintf(stderr, "rolloutd: unknown log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'P':
			plan = true;
			break;
		case 'T':
			xml = optarg;
			break;
		case 'S':
			synthetic = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'V':
			printf("rolloutd 0.1.0\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config || optind != argc) {
		usage(stderr);
		return 2;
	}
	char err[1024];
	struct rd_cfg *cfg;
	if (rd_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "rolloutd: %s\n", err);
		return 1;
	}
	if ((xml || synthetic || json) && !plan) {
		fprintf(stderr, "rolloutd: --topology, --synthetic and --json go with --plan\n");
		rd_config_free(cfg);
		return 2;
	}
	if (xml && synthetic) {
		fprintf(stderr, "rolloutd: --topology and --synthetic exclude each other\n");
		rd_config_free(cfg);
		return 2;
	}
	if (plan) {
		int prc = print_plan(cfg, xml, synthetic, json);
		rd_config_free(cfg);
		return prc;
	}
	if (check) {
		printf("%s: ok (%u pool entr%s, %u shard%s)\n", config, cfg->pools_count,
		       cfg->pools_count == 1 ? "y" : "ies", cfg->shards, cfg->shards == 1 ? "" : "s");
		rd_config_free(cfg);
		return 0;
	}
	int major, minor, patch;
	zmq_version(&major, &minor, &patch);
	if (major * 10000 + minor * 100 + patch < 40303) {
		fprintf(stderr, "rolloutd: libzmq %d.%d.%d is too old (need >= 4.3.3)\n", major, minor,
			patch);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct rd *d;
	if (rd_create(&d, cfg, err, sizeof(err))) {
		fprintf(stderr, "rolloutd: %s\n", err);
		rd_config_free(cfg);
		return 1;
	}
	int rc = rd_run(d, &stop_flag);
	rd_destroy(d);
	rd_config_free(cfg);
	return rc ? 1 : 0;
}
