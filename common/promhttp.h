/* The metrics endpoint both daemons serve: GET/HEAD /metrics (Prometheus text from the
 * daemon's render callback) and /healthz, on libmicrohttpd's own thread so scrapes never
 * touch the data path. Everything else gets a short, bounded answer: 404 for unknown
 * paths, 405 for other methods, 431/413 or a close for oversized requests; slow clients
 * are cut off after a few seconds and cannot starve the scraper (see promhttp.c). */
#ifndef ROLLOUT_COMMON_PROMHTTP_H
#define ROLLOUT_COMMON_PROMHTTP_H

#include <stddef.h>

struct promhttp;

/* Renders the exposition text; called on the HTTP thread. Returns malloc'ed text (the
 * endpoint frees it) or NULL (answered 500). */
typedef char *(*promhttp_render_fn)(void *arg, size_t *len);
/* 0: healthy (200 "ok"); otherwise 503 with the text it leaves in why. May be NULL. */
typedef int (*promhttp_health_fn)(void *arg, char *why, size_t whysz);

/* Parses "HOST:PORT" (IPv4 dotted quad or [IPv6]); 0 or -EINVAL. */
int promhttp_parse_addr(const char *addr, void *sockaddr_storage, unsigned *socklen);
/* Starts serving addr. 0, -EINVAL (bad address) or -EADDRINUSE. */
int promhttp_start(struct promhttp **out, const char *addr, promhttp_render_fn render,
		   promhttp_health_fn health, void *arg);
/* Stops the thread and frees h; NULL is fine. */
void promhttp_stop(struct promhttp *h);

/* A daemon's metrics object: calloc'ed with `size` bytes whose first member is the
 * `struct promhttp *` of its endpoint, which serves addr (none when addr is NULL) with
 * render(obj). 0 and *obj, or a negative code and nothing allocated. */
int promhttp_object_new(void **obj, size_t size, const char *addr, promhttp_render_fn render);
/* Stops the object's endpoint and frees it; NULL is fine. */
void promhttp_object_free(void *obj);

#endif
