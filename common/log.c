/* logfmt writer for the daemons: one write(2) per line so concurrent threads never
 * interleave within a line. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int rlog_min_level = RLOG_INFO;
static const char *rlog_prog = "rollout";
static const char *const level_names[] = { "debug", "info", "warn", "error" };

int rlog_set_level(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (!strcmp(name, level_names[i])) {
			rlog_min_level = i;
			return 0;
		}
	return -EINVAL;
}

void rlog_set_prog(const char *prog)
{
	rlog_prog = prog;
}

void rlog_write(int level, const char *msg, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ level=%s prog=%s msg=\"", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec,
			 level_names[level < 0   ? 0
				     : level > 3 ? 3
						 : level],
			 rlog_prog);
	for (const char *c = msg; *c && n < (int)sizeof(line) - 4; c++) {
		if (*c == '"' || *c == '\\')
			line[n++] = '\\';
		line[n++] = *c;
	}
	line[n++] = '"';
	if (fmt && *fmt && n < (int)sizeof(line) - 2) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		va_end(ap);
		if (m > 0) {
			int end = n + (m < (int)sizeof(line) - n - 1 ? m : (int)sizeof(line) - n - 2);
			/* A raw control byte never reaches the log: one line per call, always. */
			for (int i = n; i < end; i++)
				if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
					line[i] = '?';
			n = end;
		}
	}
	line[n++] = '\n';
	ssize_t w;
	do
		w = write(STDERR_FILENO, line, (size_t)n);
	while (w < 0 && errno == EINTR);
}

const char *rlog_esc(char *buf, size_t n, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (!n)
		return buf;
	for (; s && *s && o + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = 0;
	return buf;
}
