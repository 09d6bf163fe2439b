/* rolloutd's attach server, on the main thread: the unix socket trainers connect to, the
 * attach handshake (request in, segment fd and wake-ups out with SCM_RIGHTS) and the
 * handoff of the new trainer to its shard. Every connection is non-blocking with its own
 * deadline, so a slow or hostile local client delays nobody else.
 * The socket path is taken only from a dead rolloutd (a live one is refused and its socket
 * left alone) and removed at exit only if it is still ours. */
#ifndef ROLLOUT_COORDINATOR_ATTACH_H
#define ROLLOUT_COORDINATOR_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"

struct trainer;
struct attach;

struct attach_ops {
	uint32_t nshards;
	/* NUMA node for the rings of trainers of this shard, -1 for none. */
	int (*memory_node)(void *arg, uint32_t shard);
	/* Gives the trainer to its shard (which owns it from then on). */
	void (*handoff)(void *arg, uint32_t shard, struct trainer *t);
	/* Counts an attach refused (bad request, foreign uid, no resources). */
	void (*refused)(void *arg);
	void *arg;
};

/* Binds and listens on cfg->socket. -EADDRINUSE when another rolloutd serves it. */
int attach_open(struct attach **out, const struct rd_cfg *cfg, uint64_t epoch, const struct attach_ops *ops,
		char *err, size_t errsz);
/* Serves on l (the listening socket and each pending connection). */
int attach_start(struct attach *a, struct loop *l);
/* Closes pending connections and the socket; unlinks the path if it is still ours. */
void attach_close(struct attach *a);

#endif
