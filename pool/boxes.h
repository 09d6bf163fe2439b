/* rollout-pool's sandbox table: every sandbox by id, warm lists per profile, creation
 * through the zygote (capped in flight, never blocking the loop), a creation deadline so a
 * lost answer cannot leave a sandbox CREATING for ever, back-off for a profile whose
 * creations fail, and the kill path that gives every job on a sandbox its answer. */
#ifndef ROLLOUT_POOL_BOXES_H
#define ROLLOUT_POOL_BOXES_H

#include "pool_int.h"

struct box *box_find(struct pool *p, uint64_t id);
/* A warm sandbox of the profile, leased to the open's peer and the open answered; false
 * when none is warm. */
bool box_claim(struct pool *p, int profile, struct job *open);
/* Whether an open that found nothing warm may wait: a sandbox is coming for it, or may
 * still be created under the profile's max. */
bool box_can_wait(const struct pool *p, int profile);
/* Starts creations while the profile is below its warm target plus the opens waiting,
 * within the in-flight caps and max, unless it is backing off. */
void box_refill(struct pool *p, int profile);
/* Starts a creation for this open alone (from the snapshot it names): it gets the sandbox,
 * or its error. 0, -EBUSY (at max) or -errno. */
int box_create_for(struct pool *p, int profile, struct job *open);
/* Ends a sandbox: the running job completes with cur_status, queued ones with rest_status
 * (all with infra), and the zygote tears the sandbox down. b is freed. */
void box_kill(struct pool *p, struct box *b, int cur_status, int rest_status, bool infra, const char *why);
/* Every sandbox leased to peer (its lease expired). */
void box_kill_owned(struct pool *p, struct peer *peer);
void box_kill_all(struct pool *p, int status, const char *why);
/* Loop callback of the zygote socket (arg: the pool): answers and queued requests. */
void box_on_zygote(void *arg, uint32_t events);
/* Overdue creations and actions; refills. */
void box_tick(struct pool *p, uint64_t now);
/* Calls fn for every sandbox (fn may kill the one it is given, no other). */
void box_each(struct pool *p, void (*fn)(struct pool *p, struct box *b, void *arg), void *arg);

#endif
