/* The pool's answer cache: every dispatch a coordinator sent, keyed by (peer, dispatch id),
 * so a dispatch that arrives again (a reconnect) is answered from here instead of running
 * twice. Running entries and answers not yet delivered are pinned; done ones expire in the
 * order they finished, after the TTL or sooner when the cache is over its byte budget. */
#ifndef ROLLOUT_POOL_CACHE_H
#define ROLLOUT_POOL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct acache_entry {
	uint64_t peer, dispatch;
	uint64_t expires; /* set when it enters the expiry FIFO */
	uint8_t *bytes;   /* the answer (a wire Message), owned; NULL while running */
	size_t len;
	bool done;   /* answered */
	bool pinned; /* kept out of the FIFO: running, or answered but not delivered yet */
	struct acache_entry *hnext, *fnext;
};

/* Called when an entry leaves the cache, with its peer: the pool keeps a peer (and the
 * routing id its answers belong to) as long as it has entries. */
typedef void (*acache_release_fn)(void *arg, uint64_t peer);

/* Fields are private to cache.c; the struct is here so the pool can embed it. */
struct acache {
	struct acache_entry **tab;
	size_t nb, n;
	struct acache_entry *head, *tail; /* expiry FIFO: done and unpinned, oldest first */
	size_t bytes, max_bytes;
	uint64_t ttl_ns;
	acache_release_fn release;
	void *arg;
};

void acache_init(struct acache *c, uint64_t ttl_ns, size_t max_bytes, acache_release_fn release, void *arg);
/* Frees every entry (calling release for each). */
void acache_fini(struct acache *c);

struct acache_entry *acache_find(struct acache *c, uint64_t peer, uint64_t dispatch);
/* Records a dispatch as running (pinned). 0, -EEXIST (already there: *out is it) or -ENOMEM. */
int acache_begin(struct acache *c, uint64_t peer, uint64_t dispatch, struct acache_entry **out);
/* Stores the answer (copied). A pinned answer stays until acache_unpin (it still has to be
 * delivered); an unpinned one enters the FIFO now. -EALREADY when e was answered before;
 * -ENOMEM leaves e done without bytes (it still dedupes, it cannot be resent). */
int acache_finish(struct acache *c, struct acache_entry *e, const void *bytes, size_t len, bool pin,
		  uint64_t now_ns);
/* Delivered (or given up): the entry starts its TTL now. */
void acache_unpin(struct acache *c, struct acache_entry *e, uint64_t now_ns);
/* Removes done entries whose TTL passed, then the oldest ones while over the byte budget.
 * Pinned entries are never removed here. Returns how many went. */
size_t acache_expire(struct acache *c, uint64_t now_ns);

static inline size_t acache_count(const struct acache *c)
{
	return c->n;
}
static inline size_t acache_bytes(const struct acache *c)
{
	return c->bytes;
}

#endif
