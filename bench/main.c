/* rollout-bench: dispatches to the registered suites. Every suite prints a JSON object
 * as the last line of its stdout; notes and progress go to stderr. */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct bench_suite *suites;

void bench_register(struct bench_suite *s)
{
	struct bench_suite **p = &suites;
	while (*p && strcmp((*p)->name, s->name) < 0)
		p = &(*p)->next;
	s->next = *p;
	*p = s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static size_t rank(size_t n, double q)
{
	if (q <= 0)
		return 0;
	size_t r = (size_t)(q * (double)n + 0.999999);
	return r == 0 ? 0 : (r > n ? n - 1 : r - 1);
}

double bench_quantile(double *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return v[rank(n, q)];
}

uint64_t bench_quantile_u64(uint64_t *v, size_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[rank(n, q)];
}

int bench_spawn_daemon(const char *exe, const char *cfg)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl(exe, exe, "--config", cfg, "--log-level", "error", (char *)NULL);
		_exit(127);
	}
	return (int)pid;
}

void bench_build_dir(char *out, size_t len)
{
	char self[4096];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[sl > 0 ? sl : 0] = 0;
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	snprintf(out, len, "%s/..", self);
}

int bench_pin_cpu(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static int json_fields;

void bench_json_begin(void)
{
	json_fields = 0;
	fputc('{', stdout);
}

static void json_key(const char *key)
{
	printf("%s\"%s\":", json_fields++ ? "," : "", key);
}

void bench_json_num(const char *key, double v)
{
	json_key(key);
	printf("%.6g", v);
}

void bench_json_int(const char *key, int64_t v)
{
	json_key(key);
	printf("%" PRId64, v);
}

void bench_json_str(const char *key, const char *v)
{
	json_key(key);
	fputc('"', stdout);
	for (const char *c = v; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if ((unsigned char)*c < 0x20)
			printf("\\u%04x", *c);
		else
			fputc(*c, stdout);
	}
	fputc('"', stdout);
}

void bench_json_bool(const char *key, bool v)
{
	json_key(key);
	fputs(v ? "true" : "false", stdout);
}

void bench_json_end(void)
{
	puts("}");
	fflush(stdout);
}

void bench_note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rollout-bench SUITE [--json] [suite options]\n"
		   "       rollout-bench SUITE --help\n\nsuites:\n");
	for (struct bench_suite *s = suites; s; s = s->next)
		fprintf(f, "  %-10s %s\n", s->name, s->summary);
	if (!suites)
		fprintf(f, "  (none built)\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--list")) {
		for (struct bench_suite *s = suites; s; s = s->next)
			puts(s->name);
		return 0;
	}
	for (struct bench_suite *s = suites; s; s = s->next)
		if (!strcmp(s->name, argv[1]))
			return s->run(argc - 1, argv + 1);
	fprintf(stderr, "rollout-bench: unknown suite '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
