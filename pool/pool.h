/* rollout-pool's daemon: a ZeroMQ ROUTER serving coordinators (hello, heartbeats, capacity,
 * open/exec/put/get/close) on top of warm pools of sandboxes made by the zygote. One thread
 * runs the event loop (epoll over the ROUTER, the zygote and every busy sandbox). */
#ifndef ROLLOUT_POOL_POOL_H
#define ROLLOUT_POOL_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct pool;

/* Creates the pool: sandbox runtime, zygote (forked here, before any thread), ZeroMQ socket
 * bound to cfg->listen, metrics endpoint. Returns 0 or a negative code with err filled. */
int pool_create(struct pool **out, const struct pool_cfg *cfg, char *err, size_t errsz);
/* Runs until pool_stop() (or SIGTERM/SIGINT through the flag the caller passes), then
 * drains: queued work completes as SHUTTING_DOWN, running actions get drain_ms to finish. */
int pool_run(struct pool *p, volatile int *stop_flag);
void pool_destroy(struct pool *p);

#endif
