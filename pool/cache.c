/* The answer cache (see cache.h). A chained hash table that doubles to keep chains short,
 * plus one FIFO of the entries that may expire. Only done, delivered entries are in the
 * FIFO and all of them share one TTL, so the FIFO is in expiry order and expiry never has
 * to look past its head: one long-running action cannot hold back the others. */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t slot(const struct acache *c, uint64_t peer, uint64_t dispatch)
{
	return (size_t)(rollout__mix64(dispatch ^ rollout__mix64(peer)) & (c->nb - 1));
}

void acache_init(struct acache *c, uint64_t ttl_ns, size_t max_bytes, acache_release_fn release, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->ttl_ns = ttl_ns;
	c->max_bytes = max_bytes;
	c->release = release;
	c->arg = arg;
}

struct acache_entry *acache_find(struct acache *c, uint64_t peer, uint64_t dispatch)
{
	if (!c->tab)
		return NULL;
	for (struct acache_entry *e = c->tab[slot(c, peer, dispatch)]; e; e = e->hnext)
		if (e->peer == peer && e->dispatch == dispatch)
			return e;
	return NULL;
}

static int grow(struct acache *c)
{
	size_t nb = c->nb ? c->nb * 2 : 1024;
	struct acache_entry **t = calloc(nb, sizeof(*t));
	if (!t)
		return -ENOMEM;
	struct acache_entry **old = c->tab;
	size_t onb = c->nb;
	c->tab = t;
	c->nb = nb;
	for (size_t i = 0; i < onb; i++)
		for (struct acache_entry *e = old[i], *next; e; e = next) {
			next = e->hnext;
			size_t h = slot(c, e->peer, e->dispatch);
			e->hnext = t[h];
			t[h] = e;
		}
	free(old);
	return 0;
}

int acache_begin(struct acache *c, uint64_t peer, uint64_t dispatch, struct acache_entry **out)
{
	struct acache_entry *e = acache_find(c, peer, dispatch);
	if (e) {
		*out = e;
		return -EEXIST;
	}
	/* A full table still works (longer chains): growing is an optimisation. */
	if ((!c->tab || c->n >= c->nb * 2) && grow(c) && !c->tab)
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->peer = peer;
	e->dispatch = dispatch;
	e->pinned = true;
	size_t h = slot(c, peer, dispatch);
	e->hnext = c->tab[h];
	c->tab[h] = e;
	c->n++;
	c->bytes += sizeof(*e);
	*out = e;
	return 0;
}

static void fifo_push(struct acache *c, struct acache_entry *e, uint64_t now)
{
	e->pinned = false;
	e->expires = now + c->ttl_ns;
	e->fnext = NULL;
	if (c->tail)
		c->tail->fnext = e;
	else
		c->head = e;
	c->tail = e;
}

int acache_finish(struct acache *c, struct acache_entry *e, const void *bytes, size_t len, bool pin,
		  uint64_t now_ns)
{
	if (e->done)
		return -EALREADY;
	e->done = true;
	int rc = 0;
	e->bytes = len ? malloc(len) : NULL;
	if (e->bytes) {
		memcpy(e->bytes, bytes, len);
		e->len = len;
		c->bytes += len;
	} else if (len) {
		rc = -ENOMEM;
		pin = false; /* nothing to deliver later */
	}
	if (!pin)
		fifo_push(c, e, now_ns);
	return rc;
}

void acache_unpin(struct acache *c, struct acache_entry *e, uint64_t now_ns)
{
	if (e->pinned && e->done)
		fifo_push(c, e, now_ns);
}

/* Unlinks the FIFO head from the table and frees it. */
static void drop_head(struct acache *c)
{
	struct acache_entry *e = c->head;
	c->head = e->fnext;
	if (!c->head)
		c->tail = NULL;
	struct acache_entry **pp = &c->tab[slot(c, e->peer, e->dispatch)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	c->n--;
	c->bytes -= sizeof(*e) + e->len;
	uint64_t peer = e->peer;
	free(e->bytes);
	free(e);
	if (c->release)
		c->release(c->arg, peer);
}

size_t acache_expire(struct acache *c, uint64_t now_ns)
{
	size_t n = 0;
	while (c->head && (c->head->expires <= now_ns || c->bytes > c->max_bytes)) {
		drop_head(c);
		n++;
	}
	return n;
}

void acache_fini(struct acache *c)
{
	for (size_t i = 0; i < c->nb; i++)
		for (struct acache_entry *e = c->tab[i], *next; e; e = next) {
			next = e->hnext;
			if (c->release)
				c->release(c->arg, e->peer);
			free(e->bytes);
			free(e);
		}
	free(c->tab);
	memset(c, 0, sizeof(*c));
}
