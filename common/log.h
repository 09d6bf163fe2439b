/* Daemon logging: one levelled macro writing logfmt lines to stderr
 * (ts=... level=... msg="..." key=val ...). Libraries never log; only the daemons
 * (rolloutd, rollout-pool) and command-line tools include this header. The level
 * check happens before the arguments are evaluated. */
#ifndef ROLLOUT_LOG_H
#define ROLLOUT_LOG_H

#include <stddef.h>

enum rlog_level { RLOG_DEBUG = 0, RLOG_INFO, RLOG_WARN, RLOG_ERROR };

extern int rlog_min_level;

/* Sets the threshold from a name ("debug", "info", "warn", "error"); returns 0 or -EINVAL. */
int rlog_set_level(const char *name);
/* Sets the program name added as prog=... to every line. */
void rlog_set_prog(const char *prog);

/* fmt continues the line after msg: pass pre-formatted logfmt pairs, e.g.
 * RLOG(RLOG_INFO, "pool up", "endpoint=%s free=%u", ep, n). Strings that may hold
 * spaces should be quoted by the caller with %s inside \"...\". */
void rlog_write(int level, const char *msg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies s into buf (size n, always terminated) with '"', '\\' and control bytes escaped,
 * so a name that came from the network or a config file cannot end the quoted value or
 * forge a log line. Use it inside \"%s\" for every string the daemon did not write.
 * Returns buf. */
const char *rlog_esc(char *buf, size_t n, const char *s);

#define RLOG(level, msg, ...)                                    \
	do {                                                     \
		if ((level) >= rlog_min_level)                   \
			rlog_write((level), (msg), __VA_ARGS__); \
	} while (0)

#endif
