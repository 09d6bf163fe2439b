/* Environments in rollout-pool: image profiles resolved (unpacked) in threads while the pool
 * serves its other profiles, snapshots of sandboxes taken in worker threads with the sandbox
 * frozen, checkpoints after every N mutating steps, and the snapshot store's collector.
 * Threads never touch the pool's tables: they answer through a pipe the loop watches. */
#ifndef ROLLOUT_POOL_ENV_H
#define ROLLOUT_POOL_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool_int.h"

enum env_img_state { ENV_IMG_NONE = 0, ENV_IMG_RESOLVING, ENV_IMG_READY, ENV_IMG_FAILED };

/* Makes state_dir and snapshot_dir and starts resolving every image profile (after the
 * zygote exists, with the loop made). 0 or -errno with err. */
int env_start(struct pool *p, char *err, size_t errsz);
/* Waits for the threads (an unpack in progress is waited for) and frees what they made. */
void env_stop(struct pool *p);
/* Whether sandboxes of the profile can be made now; why (for an open's answer) if not. */
bool env_ready(const struct pool *p, int profile, const char **why);
/* Starts a snapshot of b (leased, idle, an image profile) for job j: j completes when it is
 * taken. With b->held set, j is an Exec or PutFile whose answer waits for its checkpoint. */
void env_snapshot(struct pool *p, struct box *b, struct job *j);
/* After an OK answer of a mutating step: true when it started the step's checkpoint (the
 * answer, copied into b->held, goes out once it is taken). */
bool env_checkpoint_due(struct pool *p, struct box *b, struct job *j, const uint8_t *msg, size_t len);
/* Periodic: the store's collector (in a thread) and its gauges. */
void env_tick(struct pool *p, uint64_t now);
/* Metrics text for the environments part (appended to the pool's). */
struct prom_out;
void env_metrics(struct pool *p, struct prom_out *o);

#endif
