/* One example of every message type of the schema, built with the C builder. Tests,
 * the interop checks against flatc and Python, and the fuzz seed corpus all use it;
 * tests/wire/fixtures/<name>.json holds what flatc must decode each one to. */
#ifndef ROLLOUT_TESTS_WIRE_CATALOG_H
#define ROLLOUT_TESTS_WIRE_CATALOG_H

#include <stddef.h>
#include <sys/types.h>

struct wt_message {
	const char *name;
	ssize_t (*build)(void *buf, size_t cap);
};

extern const struct wt_message wt_catalog[];
extern const size_t wt_catalog_len;

#endif
