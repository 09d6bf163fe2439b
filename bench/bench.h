/* rollout-bench: the suite registry and the helpers every suite shares (clock,
 * medians, percentiles, the JSON summary line). Each suite registers itself with
 * BENCH_SUITE() from its own file, so adding a suite touches no shared file. */
#ifndef ROLLOUT_BENCH_H
#define ROLLOUT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct bench_suite {
	const char *name;
	const char *summary;
	/* argv[0] is the suite name; returns a process exit code. */
	int (*run)(int argc, char **argv);
	struct bench_suite *next;
};

void bench_register(struct bench_suite *s);

#define BENCH_SUITE(ident, name_, summary_, fn)                                                            \
	static struct bench_suite bench_suite_##ident = { .name = name_, .summary = summary_, .run = fn }; \
	__attribute__((constructor)) static void bench_register_##ident(void)                              \
	{                                                                                                  \
		bench_register(&bench_suite_##ident);                                                      \
	}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sorts v in place and returns the value at quantile q (0..1), nearest rank. */
double bench_quantile(double *v, size_t n, double q);
uint64_t bench_quantile_u64(uint64_t *v, size_t n, double q);

/* Pins the calling thread (or, with pid, a process) to one cpu; returns 0 or -errno. */
int bench_pin_cpu(int cpu);

/* JSON summary: bench_json_begin(), then key/value calls, then bench_json_end() prints
 * the object as one line on stdout. Keys are printed in call order. */
void bench_json_begin(void);
void bench_json_num(const char *key, double v);
void bench_json_int(const char *key, int64_t v);
void bench_json_str(const char *key, const char *v);
void bench_json_bool(const char *key, bool v);
void bench_json_end(void);

/* Starts a daemon of the build (rolloutd, rollout-pool, rollout-gateway) with a config,
 * logging errors only; its pid (the caller kills and reaps it). */
int bench_spawn_daemon(const char *exe, const char *cfg);
/* The build directory this rollout-bench belongs to (BUILD/bench/rollout-bench -> BUILD/bench/..). */
void bench_build_dir(char *out, size_t len);

/* Progress and human-readable lines go to stderr so the JSON line stays last on stdout. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
