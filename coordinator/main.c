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
#include "shard.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rolloutd --config FILE [--log-level debug|info|warn|error]\n"
		   "       rolloutd --check-config FILE\n"
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
					    { 0 } };
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
