/* The sandbox runtime of rollout-pool. A sandbox is an init process in its own pid, mount,
 * ipc, uts and net namespaces (and a user namespace when the pool is not root), with a
 * read-only root, a size-capped tmpfs work area, its own /proc, loopback only (or a routed
 * veth with an allowlist, net.h), rlimits, a cgroup, no capabilities, an unprivileged uid,
 * no_new_privs and a seccomp filter. The pool talks to the init over a stream socketpair
 * carrying length-prefixed wire Messages: a Request in, a Completion out (see sbx_init_main
 * in init.c).
 *
 * The creating side never allocates between clone and the child's setup: the child of a
 * multithreaded pool (ZeroMQ runs threads) may only make system calls until it is on its own. */
#ifndef ROLLOUT_POOL_SANDBOX_H
#define ROLLOUT_POOL_SANDBOX_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "net.h"

#define SBX_MAX_ENV     32
#define SBX_NETNS_STOCK 256
#define SBX_MAX_MASKS   4
#define SBX_MAX_HIDDEN  4
#define SBX_IDMAP_CACHE 1024
#define SBX_MAX_LAYERS  128 /* image and snapshot layers of one root */
/* init's descriptor of an image sandbox's upper directory (O_PATH): the pool opens it as
 * /proc/PID/fd/4 to take snapshots. */
#define SBX_UPPER_FD    4

/* The profile root that is no host data: the host's system directories (/usr, /bin, /sbin,
 * /lib*, /etc without its secrets) read-only on an otherwise empty root. */
#define SBX_ROOT_SYSTEM "system"

enum sbx_type { SBX_ISOLATED = 0, SBX_NOOP = 1 };

/* An environment profile (from the pool's config). Strings are owned by the config. */
struct sbx_profile {
	const char *name;
	enum sbx_type type;
	const char *root; /* read-only root: SBX_ROOT_SYSTEM, "/" (host) or an image directory */
	const char *hostname;
	uint32_t warm;           /* sandboxes kept ready to claim */
	uint32_t max;            /* sandboxes of this profile at most */
	uint32_t workdir_mb;     /* tmpfs work area size (mounted on /tmp, the cwd) */
	uint32_t memory_mb;      /* cgroup memory limit */
	uint32_t pids;           /* cgroup pids limit (and RLIMIT_NPROC) */
	uint32_t cpu_percent;    /* cgroup cpu quota, percent of one cpu; 0: none */
	uint32_t timeout_ms;     /* default wall-clock timeout of an exec */
	uint32_t max_timeout_ms; /* largest timeout a request may ask for */
	uint32_t output_cap;     /* default bytes per stream */
	uint32_t max_output_cap; /* largest output cap a request may ask for */
	uint32_t nofile;         /* RLIMIT_NOFILE */
	uint32_t file_mb;        /* RLIMIT_FSIZE */
	uint32_t uid_base;       /* sandboxes run as uid_base + slot (host uids, unprivileged) */
	uint32_t uid_count;
	const char *env[SBX_MAX_ENV];  /* "NAME=value", NULL-terminated */
	const struct net_profile *net; /* network: egress (net.h); NULL: loopback only */
	/* Image profiles (docs/environments.md): a writable overlay root on the image's layers. */
	const char *image;           /* the spec from the config; NULL: root is used */
	uint32_t disk_mb;            /* size of the sandbox's upper layer (tmpfs) */
	const struct sbx_image *img; /* set once the image is resolved; NULL: not ready */
};

/* A resolved image as the zygote uses it: layer directories, the image user whose files
 * the sandbox owns (its uid is mapped to the sandbox's own through an idmapped mount of
 * each layer), the working directory and the environment (the image's, then the profile's). */
struct sbx_image {
	char id[72];
	char **layers; /* bottom first */
	unsigned nlayers;
	uint32_t uid, gid;
	char *cwd;
};

/* A sandbox started from a snapshot: its snapshot layers above the image's, top first. */
struct sbx_from {
	const char *const *layers;
	unsigned nlayers;
};

/* Process-wide state built once at pool start. */
struct sbx_runtime {
	struct cg_sys cg;
	bool cgroups;       /* cgroups usable (else rlimits only) */
	bool userns;        /* not root: sandboxes get a user namespace */
	char staging[256];  /* empty directory used as a mount point inside each sandbox */
	void *seccomp_prog; /* struct sock_fprog, prebuilt so the child never allocates */
	pid_t pool_pid;
	uint64_t next_uid_slot;
	/* Sandbox cpusets from the placement plan, one per NUMA node; sandboxes are spread
	 * over them by id. None: sandboxes may run anywhere. */
	cpu_set_t node_cpus[8];
	int nnode_cpus;
	/* Network namespaces created ahead (loopback up), so creating one, the costliest part
	 * of a sandbox, stays off the request path. */
	int netns[SBX_NETNS_STOCK];
	int nnetns;
	int host_netns; /* the pool's own, to return to after making one */
	/* Host files no sandbox may read whatever their mode (the pool's config, which may
	 * hold its CURVE secret): an empty read-only file is bound over each. */
	char masks[SBX_MAX_MASKS][4096];
	int nmasks;
	char empty[280];     /* that empty file */
	struct net_sys *net; /* owned by the pool; NULL when no profile has network: egress */
	/* Host directories that SBX_ROOT_SYSTEM sandboxes see empty (the pool's config
	 * directory), resolved when added. */
	char hidden[SBX_MAX_HIDDEN][4096];
	int nhidden;
	/* The SBX_ROOT_SYSTEM tree, built once by sbx_runtime_system_root in the pool's own
	 * mount namespace; sandboxes pivot into their copy of it. Not ready (no root): each
	 * sandbox builds its own in its user namespace. */
	char system_root[280];
	bool system_ready;
	char snapshot_dir[1024]; /* the snapshot store (snapstore.h), read by the zygote */
	bool own_mounts;         /* the pool is in a mount namespace of its own */
	/* User namespaces used only for their maps: image layers are mounted idmapped with one,
	 * so a sandbox owns its image user's files. Made once per (uid, image user). */
	struct sbx_idmap {
		uint32_t uid, iuid, igid;
		int fd;
	} idmaps[SBX_IDMAP_CACHE];
};

struct sbx {
	uint64_t id;
	const struct sbx_profile *profile;
	pid_t pid;       /* init, as seen by the pool */
	int pidfd;       /* readable when init exits */
	int fd;          /* pool end of the socketpair (nonblocking) */
	uint32_t uid;    /* host uid the sandbox runs as */
	char cgname[32]; /* cgroup name under the pool's group */
	uint64_t oom_before;
	int32_t net_slot; /* its veth pair's /31 slot, or -1 (net.h) */
};

/* Builds the seccomp program, finds cgroups, prepares the staging directory and reaps what
 * a crashed pool left behind (cgroups named like ours). */
int sbx_runtime_init(struct sbx_runtime *rt, const char *cgroup_group);
void sbx_runtime_free(struct sbx_runtime *rt);
/* Adds an absolute host path to hide in every sandbox created afterwards. 0, -EINVAL
 * (relative or too long) or -ENOSPC. */
int sbx_runtime_mask(struct sbx_runtime *rt, const char *path);
/* Adds a host directory that SBX_ROOT_SYSTEM sandboxes created afterwards see empty (when it
 * lies in one of the directories they get). 0, -errno of realpath, -EINVAL or -ENOSPC. */
int sbx_runtime_hide(struct sbx_runtime *rt, const char *dir);
/* Builds the tree of SBX_ROOT_SYSTEM profiles once, so a sandbox of one costs what one of the
 * host root costs. Call after the masks and hides, single-threaded, in the process whose
 * children create sandboxes (the pool, before its zygote): as root it moves the caller into
 * a mount namespace of its own (a slave of the host's: host mounts still show, the tree never
 * reaches the host). Not root: does nothing, each sandbox builds the tree itself. */
int sbx_runtime_system_root(struct sbx_runtime *rt);
/* Moves the pool (as root) into a mount namespace of its own, a slave of the host's: what it
 * mounts (the system tree, erofs/squashfs images) never reaches the host and goes with it.
 * Single-threaded, before the zygote. */
int sbx_runtime_own_mounts(struct sbx_runtime *rt);
/* Whether the profile's root is SBX_ROOT_SYSTEM. */
bool sbx_profile_system(const struct sbx_profile *p);

/* Makes (one at a time, when idle) the idmaps the next `ahead` sandboxes of an image profile
 * will need. Returns whether it made one. */
bool sbx_idmap_fill(struct sbx_runtime *rt, const struct sbx_profile *p, unsigned ahead);
/* Adds network namespaces to the stock until it holds `want` (at most SBX_NETNS_STOCK);
 * returns how many it holds. Call when idle. */
int sbx_netns_fill(struct sbx_runtime *rt, int want);

/* Creates a sandbox and waits until its init is ready to take actions. from: the snapshot
 * layers an image sandbox starts from (NULL: the bare image). */
int sbx_create(struct sbx_runtime *rt, const struct sbx_profile *p, uint64_t id, const struct sbx_from *from,
	       struct sbx *out);
/* The idmap user namespace (cached) that maps image uid/gid iuid/igid to uid: an fd, or
 * -errno. */
int idmap_get(struct sbx_runtime *rt, uint32_t uid, uint32_t iuid, uint32_t igid);
/* Kills the whole sandbox (init is pid 1 of its namespace: everything in it dies), reaps
 * init, removes the cgroup and closes the fds. Safe on a half-created sandbox. */
void sbx_destroy(struct sbx_runtime *rt, struct sbx *s);

/* Frames on the socketpair: a u32 length, then a wire Message. */
#define SBX_MAX_FRAME     (64u << 20)
#define SBX_SOCKET_BUFFER (4 << 20) /* send buffer of each end of a sandbox's socket */

/* Entry point of the init inside the sandbox (never returns). */
void sbx_init_main(const struct sbx_runtime *rt, const struct sbx_profile *p, int fd, uint32_t uid)
    __attribute__((noreturn));

#endif
