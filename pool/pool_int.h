/* What rollout-pool's parts share: the pool, its coordinator peers, jobs and sandboxes.
 * Only the daemon's own files include this (peer.c, proto.c, boxes.c, action.c, pool.c);
 * the parts that stand alone (cache, frame, zap, config, metrics) do not. Everything here
 * belongs to the event-loop thread. */
#ifndef ROLLOUT_POOL_INT_H
#define ROLLOUT_POOL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "cache.h"
#include "config.h"
#include "frame.h"
#include "loop.h"
#include "metrics.h"
#include "rollout_wire.h"
#include "sandbox.h"
#include "zap.h"
#include "zygote.h"

#include "image.h"
#include "snapstore.h"

#define POOL_BOX_BUCKETS     4096
#define POOL_TICK_MS         50
#define POOL_BACKSTOP_MS     2000 /* past an action's timeout before the pool stops waiting for init */
#define POOL_DRAIN_MS        10000
#define POOL_CACHE_MAX_BYTES (256u << 20)
#define POOL_ZY_INFLIGHT     8 /* creations sent to the zygote and not answered, all profiles */
#define POOL_ZY_PER_PROFILE  4 /* the same, per profile */

/* A coordinator connection, known by its ROUTER routing id (stable across reconnects:
 * rolloutd sets it, ROUTER_HANDOVER gives it to the new connection). Freed once it has
 * been silent past its lease and owns nothing (sandboxes, jobs, cached answers). */
struct peer {
	uint64_t id; /* key of its answers in the cache; never reused */
	uint8_t rid[256];
	size_t rid_len;
	uint64_t last_seen;
	uint32_t lease_ms;
	bool hello;
	uint32_t boxes, jobs, cached;
	uint64_t *outbox; /* dispatch ids whose answers wait for delivery, oldest first */
	size_t nout, outcap;
	struct peer *next;
};

/* One dispatched request, from arrival to its answer. */
struct job {
	struct peer *peer;
	uint64_t dispatch;
	uint64_t request_id;
	uint32_t timeout_ms;
	int kind; /* rw_Action_* */
	uint64_t started;
	uint8_t *msg; /* the request as received, until it is handed to init */
	size_t len;
	struct job *next;
	/* Open: the snapshot to start from ("": the bare image) and the checkpoint interval;
	 * Snapshot: whether it is also the sandbox's checkpoint. */
	char snap[SNAP_ID_MAX];
	uint32_t checkpoint_every;
	bool checkpoint;
};

enum box_state { BOX_CREATING, BOX_WARM, BOX_LEASED };

struct box {
	struct pool *pool; /* for the loop callbacks */
	struct sbx s;
	int profile;
	enum box_state state;
	struct peer *owner;
	struct job *cur; /* the action init is running */
	/* CREATING: when the zygote's answer is overdue; with cur: when init's is. */
	uint64_t deadline;
	struct job *qhead, *qtail;
	struct frame_io io;
	bool watched; /* fd registered with the loop */
	uint64_t oom_seen;
	struct box *hnext; /* id hash chain */
	struct box *wnext; /* warm list of its profile */
	struct box *cnext; /* creations in flight, in the order they were asked for */
	/* Environments (env.c). A sandbox made for one open (from a snapshot) goes to it. */
	struct job *for_open;
	char from[SNAP_ID_MAX];       /* the snapshot it was opened from, or "" */
	char checkpoint[SNAP_ID_MAX]; /* its latest checkpoint, or "" */
	uint64_t checkpoint_rid;      /* the last request the checkpoint holds */
	uint32_t checkpoint_every, steps;
	uint64_t snap_seq; /* the snapshot in progress (matches its worker's answer), or 0 */
	uint8_t *held;     /* the answer of a step waiting for its checkpoint */
	size_t held_len;
};

struct profile_state {
	struct sbx_profile sp;
	uint32_t total, leased, warm, creating;
	struct box *warm_list;
	struct job *waiting_head, *waiting_tail; /* opens waiting for a sandbox */
	uint32_t waiting;
	uint32_t fail_streak; /* creations failed in a row: refills back off */
	uint64_t retry_at;
	/* Image profiles: resolving (unpacking) in a thread, then ready or failed (env.c). */
	int img_state; /* enum env_img_state */
	char img_err[512];
	struct img *img;
	struct sbx_image simg;
	uint64_t img_done, img_total;        /* bytes of the layers read (atomic) */
	struct job *snapq_head, *snapq_tail; /* opens from a snapshot waiting for the image */
};

struct pool {
	const struct pool_cfg *cfg;
	struct sbx_runtime rt;
	struct zygote zy;
	bool zy_out; /* watching the zygote socket for EPOLLOUT */
	struct profile_state *prof;
	size_t nprof;
	void *zctx, *router;
	int router_fd;
	struct loop *loop;
	uint64_t boot_id, next_id, next_peer_id;
	struct box *boxes[POOL_BOX_BUCKETS];
	struct peer *peers;
	uint32_t npeers;
	struct acache cache;
	uint64_t last_capacity_sent;
	bool capacity_dirty;
	bool draining;
	int failed; /* negative: the pool cannot go on (zygote gone) */
	char why[256];
	uint32_t inflight, zy_inflight;
	/* Creations asked of the zygote and not answered, oldest first (at most
	 * POOL_ZY_INFLIGHT), and when the zygote last answered: it answers in order, so an
	 * answer overtaking an older creation means that one's answer was lost, and a zygote
	 * that answers nothing for create_timeout_ms while creations wait is stuck. */
	struct box *creating_head;
	uint64_t zy_progress;
	struct pool_metrics *m;
	uint8_t *build;
	size_t build_cap;
	struct fb_builder b;
	struct zap zap;
	bool zap_on;
	struct env *env; /* images and snapshots (env.c) */
};

/* A builder over the pool's scratch buffer, at least `need` bytes; NULL without memory. */
struct fb_builder *pool__builder(struct pool *p, size_t need);
/* Marks the pool failed with a reason: the loop stops and rollout-pool exits 1. */
void pool__fail(struct pool *p, int rc, const char *why);

#endif
