/* Prometheus text exposition (format 0.0.4) shared by both daemons: a growing text buffer
 * and a latency histogram updated with relaxed atomics by the data path and read by the
 * HTTP thread. One set of bucket bounds, 10 µs to 600 s, so a histogram covers every
 * timeout a profile allows. */
#ifndef ROLLOUT_COMMON_PROM_H
#define ROLLOUT_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROM_NBUCKET 22

/* Upper bounds in seconds, ascending; +Inf is implicit. */
extern const double prom_bucket_s[PROM_NBUCKET];

struct prom_hist {
	uint64_t b[PROM_NBUCKET]; /* per bucket, not cumulative; rendered cumulative */
	uint64_t count, sum_ns;
};

/* Any thread; lock-free. */
void prom_observe(struct prom_hist *h, uint64_t ns);

#define PROM_ADD(field, v) __atomic_add_fetch(&(field), (v), __ATOMIC_RELAXED)
#define PROM_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define PROM_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)

/* The text being rendered. After an allocation failure every later call is a no-op and
 * prom_out_take() returns NULL, so a render under memory pressure fails whole. */
struct prom_out {
	char *buf;
	size_t len, cap;
	bool failed;
};

void prom_out_init(struct prom_out *o);
void prom_printf(struct prom_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help\n# TYPE name type\n" */
void prom_head(struct prom_out *o, const char *name, const char *type, const char *help);
/* One series of a histogram family whose head was written: labels is "" or `k="v",...`. */
void prom_hist_series(struct prom_out *o, const char *name, const char *labels, const struct prom_hist *h);
/* NAME{version="..."} 1, with its head: which build is running. */
void prom_build_info(struct prom_out *o, const char *name, const char *help);
/* The text (caller frees) and its length, or NULL when anything failed. */
char *prom_out_take(struct prom_out *o, size_t *len);

#endif
