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
	/* The daemon's life: create from the config (negative with err when it cannot start),
	 * serve until *stop becomes non-zero (0 after a clean stop, negative with err when it
	 * failed), destroy. */
	int (*create)(void **daemon, void *cfg, char *err, size_t errsz);
	int (*serve)(void *daemon, atomic_int *stop, char *err, size_t errsz);
	void (*destroy)(void *daemon);
	/* Extra long options and their handler (returns 0, or 2 for a usage error). */
	const struct option *extra;
	int (*extra_opt)(int id, const char *arg);
	/* Called after the config loaded, before serving; returning >= 0 exits with that status
	 * instead of serving (rolloutd --plan). May be NULL. */
	int (*instead)(void *cfg);
};

/* The glue of a daemon whose functions are CFGPREFIX_load(path, struct CFGTYPE **, err,
 * errsz), CFGPREFIX_free(cfg), PREFIX_create(struct TYPE **, cfg, err, errsz),
 * PREFIX_run(struct TYPE *, atomic_int *, err, errsz) and PREFIX_destroy(struct TYPE *):
 * defines daemon_load, daemon_free_cfg, daemon_create, daemon_serve and daemon_destroy for
 * its spec. */
#define DAEMON_LIFECYCLE(PREFIX, TYPE, CFGPREFIX, CFGTYPE)                            \
	static int daemon_load(const char *path, void **cfg, char *err, size_t errsz) \
	{                                                                             \
		return CFGPREFIX##_load(path, (struct CFGTYPE **)cfg, err, errsz);    \
	}                                                                             \
	static void daemon_free_cfg(void *cfg)                                        \
	{                                                                             \
		CFGPREFIX##_free(cfg);                                                \
	}                                                                             \
	static int daemon_create(void **d, void *cfg, char *err, size_t errsz)        \
	{                                                                             \
		return PREFIX##_create((struct TYPE **)d, cfg, err, errsz);           \
	}                                                                             \
	static int daemon_serve(void *d, atomic_int *stop, char *err, size_t errsz)   \
	{                                                                             \
		return PREFIX##_run(d, stop, err, errsz);                             \
	}                                                                             \
	static void daemon_destroy(void *d)                                           \
	{                                                                             \
		PREFIX##_destroy(d);                                                  \
	}

/* The spec's fields DAEMON_LIFECYCLE defined. */
#define DAEMON_GLUE                                                                                       \
	.load = daemon_load, .free_cfg = daemon_free_cfg, .create = daemon_create, .serve = daemon_serve, \
	.destroy = daemon_destroy

/* The whole main() of a daemon. */
int daemon_main(int argc, char **argv, const struct daemon_spec *spec);

/* libzmq >= 4.3.3, and CURVE support when wanted: 0 or -ENOTSUP with err. Checked at
 * every start, after the config (which says whether CURVE is wanted) loaded. */
int daemon_check_zmq(bool want_curve, char *err, size_t errsz);
/* The same decision for a given version and capability (what daemon_check_zmq asks of the
 * loaded libzmq). */
int daemon_zmq_ok(int major, int minor, int patch, bool has_curve, bool want_curve, char *err, size_t errsz);

#endif
