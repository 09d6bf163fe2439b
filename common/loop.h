/* A small event loop (epoll, periodic timers, a before-sleep hook) for the daemons' single
 * event threads: rolloutd's shards and rollout-pool's main loop. Not thread-safe: one loop
 * belongs to the thread that runs it. */
#ifndef ROLLOUT_COMMON_LOOP_H
#define ROLLOUT_COMMON_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

typedef void (*loop_io_fn)(void *arg, uint32_t events);
typedef void (*loop_timer_fn)(void *arg, uint64_t now_ns);
/* Runs after every batch of events and timers; returns true when it left work undone, so
 * the next wait does not sleep. */
typedef bool (*loop_idle_fn)(void *arg);

int loop_create(struct loop **out);
/* Closes the epoll fd, not the registered fds (their owners close them). NULL is fine. */
void loop_destroy(struct loop *l);

/* Watches fd for events (EPOLLIN, ...); fn NULL only wakes the loop. 0, -EEXIST, -ENOMEM or -errno of
 * epoll_ctl. */
int loop_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *arg);
int loop_mod(struct loop *l, int fd, uint32_t events);
/* Stops watching fd. Safe from a callback: events of fd still in the current batch are
 * dropped, even if the number is reused by a later loop_add in the same batch. */
int loop_del(struct loop *l, int fd);

/* Calls fn every interval_ns, first after one interval. 0 or -ENOMEM. */
int loop_every(struct loop *l, uint64_t interval_ns, loop_timer_fn fn, void *arg);
void loop_set_idle(struct loop *l, loop_idle_fn fn, void *arg);

/* Waits at most max_wait_ms (less when a timer is due, 0 when the idle hook asked), then
 * runs ready callbacks, due timers and the idle hook. Returns the number of fd events
 * handled or -errno (EINTR is not an error: 0). */
int loop_run_once(struct loop *l, int max_wait_ms);

#endif
