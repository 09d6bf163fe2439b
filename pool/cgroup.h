/* Per-sandbox cgroups, v2 (unified) or v1 (memory, pids, cpu). All functions return 0 or
 * -errno; with no usable cgroup hierarchy (version 0) they do nothing and rlimits are the
 * only limits. */
#ifndef ROLLOUT_POOL_CGROUP_H
#define ROLLOUT_POOL_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum { CG_UNIFIED = 0, CG_MEMORY = 0, CG_PIDS = 1, CG_CPU = 2, CG_NCTL = 3 };

struct cg_sys {
	int version;                 /* 2, 1, or 0 when cgroups are not usable */
	char dir[CG_NCTL][PATH_MAX]; /* the pool's parent group per controller (v2: [0] only) */
	char freezer[PATH_MAX];      /* v1: the pool's group in the freezer hierarchy, or "" */
};

struct cg_limits {
	uint64_t memory_bytes; /* 0: no limit */
	uint32_t pids;         /* 0: no limit */
	uint32_t cpu_percent;  /* of one cpu; 0: no limit */
};

/* Finds the hierarchy under root (default /sys/fs/cgroup) and creates the pool's parent
 * group `group` in it. */
int cg_init(struct cg_sys *s, const char *root, const char *group);
int cg_create(const struct cg_sys *s, const char *name, const struct cg_limits *l);
int cg_attach(const struct cg_sys *s, const char *name, pid_t pid);
int cg_count(const struct cg_sys *s, const char *name);
void cg_kill(const struct cg_sys *s, const char *name);
int cg_destroy(const struct cg_sys *s, const char *name);
/* OOM kills inside the group so far (v2 memory.events, v1 memory.oom_control). */
uint64_t cg_oom_kills(const struct cg_sys *s, const char *name);
uint64_t cg_memory_peak(const struct cg_sys *s, const char *name);
/* Freezes (or thaws) every process of the group and waits until they are: v2 cgroup.freeze;
 * v1 moves them into a freezer group of the same name first (made on first use). -ENOTSUP
 * without a freezer, -ETIMEDOUT when they would not freeze within a second. */
int cg_freeze(const struct cg_sys *s, const char *name, bool freeze);
/* Kills and removes every group under the pool's parent: what a crashed pool left. */
int cg_reap_stale(const struct cg_sys *s);
/* Removes the pool's parent group (when empty): for tools that use a throwaway group. */
void cg_fini(const struct cg_sys *s);
/* Number of sandbox groups that exist now. */
int cg_list(const struct cg_sys *s);

#endif
