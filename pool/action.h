/* Running actions in a sandbox: one at a time, in order. The request goes to init through
 * the sandbox's frame buffer (non-blocking, EPOLLOUT when it does not fit), init's answer
 * comes back checked (verified, the right dispatch, the result its status promises) and,
 * when the cgroup saw an OOM kill during an exec, rewritten as MEMORY_LIMIT. */
#ifndef ROLLOUT_POOL_ACTION_H
#define ROLLOUT_POOL_ACTION_H

#include "pool_int.h"

/* Queues j on b (leased) and starts it when b is idle. */
void act_enqueue(struct pool *p, struct box *b, struct job *j);
/* A Signal request (raw: its verified message) for b: delivered to the exec running now
 * when it is the target, or the queued target exec cancelled; j completes at once. */
void act_signal(struct pool *p, struct box *b, struct job *j, const uint8_t *raw, size_t len);
/* Starts queued actions while b is idle. */
void act_dispatch_next(struct pool *p, struct box *b);
/* Init's completion msg again, with status (negative: the same), message (NULL: the same)
 * and, when checkpoint is set, the checkpoint fields; an ExecResult is carried over whole.
 * Its size in the pool's builder, or 0. */
size_t act_rebuild(struct pool *p, const uint8_t *msg, int status, const char *message,
		   const char *checkpoint, uint64_t checkpoint_rid);
/* Loop callback of a sandbox socket (arg: the box). */
void act_on_io(void *arg, uint32_t events);

#endif
