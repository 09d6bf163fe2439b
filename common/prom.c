/* Prometheus text exposition helpers (see prom.h). */
#include "prom.h"

#include "rollout_version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double prom_bucket_s[PROM_NBUCKET] = { 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
					     0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
					     0.1,     0.25,     0.5,     1,      2.5,     5,
					     10,      30,       120,     600 };

void prom_observe(struct prom_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	int i = 0;
	while (i < PROM_NBUCKET && s > prom_bucket_s[i])
		i++;
	if (i < PROM_NBUCKET)
		PROM_ADD(h->b[i], 1);
	PROM_ADD(h->sum_ns, ns);
	/* count last: a reader that sees the count sees at least as many bucket entries. */
	PROM_ADD(h->count, 1);
}

void prom_out_init(struct prom_out *o)
{
	o->cap = 16384;
	o->len = 0;
	o->buf = malloc(o->cap);
	o->failed = !o->buf;
	if (o->buf)
		o->buf[0] = 0;
}

void prom_printf(struct prom_out *o, const char *fmt, ...)
{
	while (!o->failed) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		if (!b) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

void prom_head(struct prom_out *o, const char *name, const char *type, const char *help)
{
	prom_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_hist_series(struct prom_out *o, const char *name, const char *labels, const struct prom_hist *h)
{
	const char *sep = labels[0] ? "," : "";
	uint64_t cum = 0;
	for (int i = 0; i < PROM_NBUCKET; i++) {
		cum += PROM_GET(h->b[i]);
		prom_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, prom_bucket_s[i],
			    (unsigned long long)cum);
	}
	/* +Inf equals _count, and is never below the last bucket read. */
	uint64_t count = PROM_GET(h->count);
	if (count < cum)
		count = cum;
	prom_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)count);
	prom_printf(o, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    (double)PROM_GET(h->sum_ns) / 1e9);
	prom_printf(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		    (unsigned long long)count);
}

char *prom_out_take(struct prom_out *o, size_t *len)
{
	if (o->failed) {
		free(o->buf);
		o->buf = NULL;
		return NULL;
	}
	*len = o->len;
	char *b = o->buf;
	o->buf = NULL;
	return b;
}

void prom_build_info(struct prom_out *o, const char *name, const char *help)
{
	prom_head(o, name, "gauge", help);
	prom_printf(o, "%s{version=\"%s\"} 1\n", name, ROLLOUT_VERSION_STRING);
}
