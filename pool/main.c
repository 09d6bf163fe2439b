/* rollout-pool: serves sandboxes to coordinators over ZeroMQ.
 *   rollout-pool --config FILE [--log-level LEVEL]
 *   rollout-pool --check-config FILE */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "log.h"
#include "pool.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rollout-pool --config FILE [--log-level debug|info|warn|error]\n"
		   "       rollout-pool --check-config FILE\n"
		   "Keeps warm, isolated sandboxes per environment profile and runs actions in them for\n"
		   "rolloutd coordinators over ZeroMQ. SIGTERM drains running actions and exits.\n");
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
	rlog_set_prog("rollout-pool");
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
				fprintf(stderr, "rollout-pool: unknown log level '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("rollout-pool 0.1.0\n");
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
	struct pool_cfg *cfg;
	if (pool_config_load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "rollout-pool: %s\n", err);
		return 1;
	}
	if (check) {
		printf("%s: ok (%u profile%s)\n", config, cfg->profiles_count,
		       cfg->profiles_count == 1 ? "" : "s");
		pool_config_free(cfg);
		return 0;
	}
	int major, minor, patch;
	zmq_version(&major, &minor, &patch);
	if (major * 10000 + minor * 100 + patch < 40303) {
		fprintf(stderr, "rollout-pool: libzmq %d.%d.%d is too old (need >= 4.3.3)\n", major, minor,
			patch);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct pool *p;
	int rc = pool_create(&p, cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rollout-pool: %s\n", err);
		pool_config_free(cfg);
		return 1;
	}
	rc = pool_run(p, &stop_flag);
	pool_destroy(p);
	pool_config_free(cfg);
	return rc ? 1 : 0;
}
