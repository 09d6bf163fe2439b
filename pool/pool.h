/* rollout-pool's daemon: the event loop (common/loop.h) over the ROUTER socket that serves
 * coordinators, the zygote's socket and every sandbox's socket, with a 50 ms tick for
 * leases, deadlines, refills and capacity updates. The parts: peer.c (routing ids and
 * answer delivery), proto.c (the protocol), boxes.c (sandbox table and refill), action.c
 * (actions in a sandbox), cache.c, frame.c, zap.c, config.c, metrics.c. */
#ifndef ROLLOUT_POOL_POOL_H
#define ROLLOUT_POOL_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct pool;

/* Creates the pool: sandbox runtime, zygote (forked here, before any thread), ZeroMQ socket
 * bound to cfg->listen, metrics endpoint. Returns 0 or a negative code with err filled.
 * cfg must outlive the pool. */
int pool_create(struct pool **out, const struct pool_cfg *cfg, char *err, size_t errsz);
/* Serves until *stop becomes non-zero, then drains: waiting opens complete SHUTTING_DOWN,
 * running actions get 10 s. 0 after a clean stop; negative with err when the pool could
 * not go on (the zygote died: every sandbox died with it). */
int pool_run(struct pool *p, atomic_int *stop, char *err, size_t errsz);
void pool_destroy(struct pool *p);

#endif
