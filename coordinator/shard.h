/* rolloutd's shards and the daemon that holds them. A shard is one thread running its own
 * event loop (common/loop) over its trainers' rings, its links to every pool and its
 * router: nothing on the data path is shared between shards, so nothing is locked except
 * the handoff of newly attached trainers. */
#ifndef ROLLOUT_COORDINATOR_SHARD_H
#define ROLLOUT_COORDINATOR_SHARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "pin.h"
#include "poollink.h"
#include "router.h"

struct trainer;
struct rd_metrics;

struct shard {
	int idx;
	const struct rd_cfg *cfg;
	pthread_t th;
	bool started;
	struct loop *loop;
	int handoff; /* eventfd: the attach server gave us trainers */
	pthread_mutex_t mu;
	struct trainer *incoming;  /* under mu */
	struct poollink *resolved; /* under mu: the pools as the last DNS refresh saw them */
	int nresolved;
	struct trainer *trainers;
	struct poollink *links;
	int nlinks;
	struct router *router;
	struct link_self self;
	void *zctx;
	struct rd_metrics *m;
	atomic_int *stop;
	const struct pin_topo *topo; /* NULL: not pinned */
	int cpus[8], ncpus;
	int memory_node; /* NUMA node for its trainers' segments, -1: none */
	bool some_blocked;
};

/* Sets the shard up (loop, pool links resolved, router); no thread yet. */
int shard_init(struct shard *s, int idx, const struct rd_cfg *cfg, void *zctx, struct rd_metrics *m,
	       uint64_t epoch, char *err, size_t errsz);
/* Starts its thread; it serves until *stop, then drains (drain_ms) and returns. */
int shard_start(struct shard *s, atomic_int *stop);
void shard_join(struct shard *s);
/* Called by the main thread after a DNS refresh: the pools the config names now (v is
 * copied). The shard connects to new addresses and stops opening sandboxes on pools whose
 * address left their dns: name (their sessions finish there). */
int shard_update_links(struct shard *s, const struct poollink *v, int n);
/* Called by the attach server's thread: the shard owns t from now on. */
void shard_handoff(struct shard *s, struct trainer *t);
void shard_fini(struct shard *s);

/* The daemon: shards, the attach server and the metrics endpoint. */
struct rd;
int rd_create(struct rd **out, const struct rd_cfg *cfg, char *err, size_t errsz);
/* Serves attaches until *stop, then waits for the shards to drain. 0, or negative with err. */
int rd_run(struct rd *d, atomic_int *stop, char *err, size_t errsz);
void rd_destroy(struct rd *d);

#endif
