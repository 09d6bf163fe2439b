/* Start-up shared by rolloutd and rollout-pool: the command line (--config, --check-config,
 * --config-reference, --log-level, --version, --help, plus the daemon's own options), the
 * libzmq checks, signal handling, and the exit status a service manager can act on
 * (0 after a clean stop, 1 when the daemon failed, 2 for a usage error). */
#ifndef ROLLOUT_COMMON_DAEMON_H
#define ROLLOUT_COMMON_DAEMON_H

#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

struct daemon_spec {
	const char *prog;  /* "rolloutd" */
	const char *usage; /* lines after the common ones, ending with a newline */
	/* Loads and checks path: 0 and *cfg, or negative with err ("PATH:LINE: key: ..."). */
	int (*load)(const char *path, void **cfg, char *err, size_t errsz);
	void (*free_cfg)(void *cfg);
	/* The --check-config line after "PATH: ok". */
	void (*describe)(const void *cfg, FILE *f);
	/* The key reference (Markdown) for --config-reference. */
	void (*reference)(FILE *f);
	/* Whether the loaded config turns CURVE on (then libzmq must have it). */
	bool (*wants_curve)(const void *cfg);
	/* Serves until *stop becomes non-zero. 0 after a clean stop; negative with err when
	 * the daemon could not start or failed while serving. */
	int (*run)(void *cfg, atomic_int *stop, char *err, size_t errsz);
	/* Extra long options and their handler (returns 0, or 2 for a usage error). */
	const struct option *extra;
	int (*extra_opt)(int id, const char *arg);
	/* Called after the config loaded, before serving; returning >= 0 exits with that status
	 * instead of serving (rolloutd --plan). May be NULL. */
	int (*instead)(void *cfg);
};

/* The whole main() of a daemon. */
int daemon_main(int argc, char **argv, const struct daemon_spec *spec);

/* libzmq >= 4.3.3, and CURVE support when wanted: 0 or -ENOTSUP with err. Checked at
 * every start, after the config (which says whether CURVE is wanted) loaded. */
int daemon_check_zmq(bool want_curve, char *err, size_t errsz);
/* The same decision for a given version and capability (what daemon_check_zmq asks of the
 * loaded libzmq). */
int daemon_zmq_ok(int major, int minor, int patch, bool has_curve, bool want_curve, char *err, size_t errsz);

#endif
