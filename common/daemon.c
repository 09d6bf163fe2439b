/* Daemon start-up (see daemon.h). Signal handlers only set an atomic flag; the daemon's
 * loops read it. */
#include "daemon.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "rollout_version.h"

static atomic_int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

int daemon_zmq_ok(int major, int minor, int patch, bool has_curve, bool want_curve, char *err, size_t errsz)
{
	if (major * 10000 + minor * 100 + patch < 40303) {
		snprintf(err, errsz, "libzmq %d.%d.%d is too old (need >= 4.3.3)", major, minor, patch);
		return -ENOTSUP;
	}
	if (want_curve && !has_curve) {
		snprintf(err, errsz, "CURVE keys are configured but this libzmq has no CURVE support");
		return -ENOTSUP;
	}
	return 0;
}

int daemon_check_zmq(bool want_curve, char *err, size_t errsz)
{
	int major, minor, patch;
	zmq_version(&major, &minor, &patch);
	return daemon_zmq_ok(major, minor, patch, zmq_has("curve"), want_curve, err, errsz);
}

static void usage(const struct daemon_spec *s, FILE *f)
{
	fprintf(f,
		"usage: %s --config FILE [--log-level debug|info|warn|error]\n"
		"       %s --check-config FILE\n"
		"       %s --config-reference\n"
		"%s",
		s->prog, s->prog, s->prog, s->usage);
}

enum { OPT_CHECK = 0x1000, OPT_LOG, OPT_REFERENCE };

int daemon_main(int argc, char **argv, const struct daemon_spec *s)
{
	struct option lo[32] = { { "config", required_argument, NULL, 'c' },
				 { "check-config", required_argument, NULL, OPT_CHECK },
				 { "config-reference", no_argument, NULL, OPT_REFERENCE },
				 { "log-level", required_argument, NULL, OPT_LOG },
				 { "help", no_argument, NULL, 'h' },
				 { "version", no_argument, NULL, 'V' } };
	size_t n = 6;
	for (const struct option *e = s->extra; e && e->name && n < 31; e++)
		lo[n++] = *e;
	lo[n] = (struct option){ 0 };
	const char *config = NULL;
	bool check = false;
	int c;
	rlog_set_prog(s->prog);
	/* Big transfers (tens of MiB per request) go through several buffers in each daemon.
	 * Memory freed after one is kept in the heap for the next instead of being unmapped:
	 * pages touched before are many times cheaper to fill than fresh ones (first touches
	 * ran at ~100-200 MB/s on a small VM), at the price of keeping the peak resident. */
	mallopt(M_MMAP_MAX, 0);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	while ((c = getopt_long(argc, argv, "c:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case OPT_CHECK:
			config = optarg;
			check = true;
			break;
		case OPT_REFERENCE:
			s->reference(stdout);
			return 0;
		case OPT_LOG:
			if (rlog_set_level(optarg)) {
				fprintf(stderr, "%s: unknown log level '%s'\n", s->prog, optarg);
				return 2;
			}
			break;
		case 'V':
			printf("%s %s\n", s->prog, ROLLOUT_VERSION_STRING);
			return 0;
		case 'h':
			usage(s, stdout);
			return 0;
		default:
			if (c != '?' && s->extra_opt && s->extra_opt(c, optarg) == 0)
				break;
			usage(s, stderr);
			return 2;
		}
	}
	if (!config || optind != argc) {
		usage(s, stderr);
		return 2;
	}
	char err[1024] = "";
	void *cfg = NULL;
	if (s->load(config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", s->prog, err);
		return 1;
	}
	int rc;
	if (s->instead && (rc = s->instead(cfg)) >= 0) {
		s->free_cfg(cfg);
		return rc;
	}
	if (check) {
		printf("%s: ok", config);
		if (s->describe) {
			printf(" (");
			s->describe(cfg, stdout);
			printf(")");
		}
		printf("\n");
		s->free_cfg(cfg);
		return 0;
	}
	if (daemon_check_zmq(s->wants_curve && s->wants_curve(cfg), err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", s->prog, err);
		s->free_cfg(cfg);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	void *d = NULL;
	rc = s->create(&d, cfg, err, sizeof(err));
	if (!rc) {
		rc = s->serve(d, &stop_flag, err, sizeof(err));
		s->destroy(d);
	}
	if (rc) {
		/* A non-zero status, so a service manager's restart-on-failure restarts us. */
		fprintf(stderr, "%s: %s\n", s->prog, err[0] ? err : "failed");
		RLOG(RLOG_ERROR, "exiting after a failure", "err=%d", rc);
	}
	s->free_cfg(cfg);
	return rc ? 1 : 0;
}
