/* Creating and destroying sandboxes. Runs in the pool's zygote, a single-threaded process
 * forked before the pool starts any thread, so the cloned child may use the C library
 * freely. Order inside the child matters: everything that needs privilege (mounts, cgroup,
 * hostname, loopback) happens first, then rlimits, then the drop to an unprivileged uid
 * with no capabilities, then no_new_privs and the seccomp filter, and only then the init
 * loop that runs untrusted code. */
#include "sandbox.h"
#include "overlay.h"
#include "syscalls.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK_SIZE (256u << 10)

/* The empty file bound over masked paths: ours, regular, empty and read-only, shared by
 * every pool of this uid on the host (a start after a crash finds it there). Anything
 * else at the name is replaced. */
static int make_empty_file(struct sbx_runtime *rt)
{
	snprintf(rt->empty, sizeof(rt->empty), "%s.empty", rt->staging);
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = open(rt->empty, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
		if (fd >= 0) {
			struct stat st;
			bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
				  st.st_uid == geteuid() && !(st.st_mode & 0222);
			close(fd);
			if (ok)
				return 0;
		} else if (errno != ELOOP && errno != EACCES) {
			return -errno;
		}
		if (unlink(rt->empty) < 0 && errno != ENOENT)
			return -errno;
	}
	return -EEXIST;
}

int sbx_runtime_init(struct sbx_runtime *rt, const char *cgroup_group)
{
	memset(rt, 0, sizeof(*rt));
	rt->pool_pid = getpid();
	/* Each sandbox holds two descriptors in the pool and the zygote: use the hard limit. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
		struct rlimit want = { 1u << 20, 1u << 20 }; /* root may raise the hard limit too */
		if (nofile.rlim_max >= want.rlim_max || setrlimit(RLIMIT_NOFILE, &want) < 0) {
			nofile.rlim_cur = nofile.rlim_max;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
	}
	rt->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	rt->userns = geteuid() != 0;
	int rc = sbx_seccomp_build((struct sock_fprog **)&rt->seccomp_prog);
	if (rc)
		return rc;
	/* The staging mount point: an empty directory nobody else uses. */
	const char *base = rt->userns ? "/tmp" : "/run";
	snprintf(rt->staging, sizeof(rt->staging), "%s/rollout-pool-root", base);
	if (mkdir(rt->staging, 0755) < 0 && errno != EEXIST)
		return -errno;
	if ((rc = make_empty_file(rt)))
		return rc;
	if (!rt->userns && cg_init(&rt->cg, NULL, cgroup_group ? cgroup_group : "rollout-pool") == 0) {
		rt->cgroups = true;
		cg_reap_stale(&rt->cg);
	}
	return 0;
}

int sbx_runtime_mask(struct sbx_runtime *rt, const char *path)
{
	if (!path || path[0] != '/' || strlen(path) >= sizeof(rt->masks[0]))
		return -EINVAL;
	if (rt->nmasks >= SBX_MAX_MASKS)
		return -ENOSPC;
	snprintf(rt->masks[rt->nmasks++], sizeof(rt->masks[0]), "%s", path);
	return 0;
}

/* Binds the empty file over every masked path that lies inside the profile root (a path
 * outside an image root is not in the sandbox at all). */
static int mask_files(const struct sbx_runtime *rt, const struct sbx_profile *p)
{
	size_t rl = strlen(p->root);
	while (rl > 1 && p->root[rl - 1] == '/')
		rl--;
	bool host_root = rl == 1 && p->root[0] == '/';
	for (int i = 0; i < rt->nmasks; i++) {
		const char *m = rt->masks[i];
		if (!host_root && (strncmp(m, p->root, rl) != 0 || m[rl] != '/'))
			continue;
		char dst[4400];
		snprintf(dst, sizeof(dst), "%s%s", rt->staging, host_root ? m : m + rl);
		if (mount(rt->empty, dst, NULL, MS_BIND, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (mount(NULL, dst, NULL,
			  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			return -errno;
	}
	return 0;
}

bool sbx_profile_system(const struct sbx_profile *p)
{
	return p->root && strcmp(p->root, SBX_ROOT_SYSTEM) == 0;
}

int sbx_runtime_hide(struct sbx_runtime *rt, const char *dir)
{
	char real[PATH_MAX];
	if (!dir || dir[0] != '/')
		return -EINVAL;
	if (rt->nhidden >= SBX_MAX_HIDDEN)
		return -ENOSPC;
	if (!realpath(dir, real))
		return -errno;
	if (strlen(real) >= sizeof(rt->hidden[0]))
		return -EINVAL;
	snprintf(rt->hidden[rt->nhidden++], sizeof(rt->hidden[0]), "%s", real);
	return 0;
}

/* What an SBX_ROOT_SYSTEM sandbox gets of the host: these, bound read-only (or copied when
 * they are symlinks: /bin -> usr/bin on a merged /usr). Nothing else of the host. */
static const char *const system_dirs[] = { "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc" };
/* Empty directories: mount points of the sandbox's own /tmp, /dev, /proc, /run and /sys, and
 * the places programs expect to exist, with nothing of the host's in them. */
static const char *const empty_dirs[] = { "tmp",  "dev", "proc", "run", "sys", "root",
					  "home", "var", "srv",  "opt", "mnt", "media" };
/* Secrets of /etc, covered whatever their mode says. */
static const char *const etc_secrets[] = { "/etc/shadow",
					   "/etc/shadow-",
					   "/etc/gshadow",
					   "/etc/gshadow-",
					   "/etc/ssh/ssh_host_rsa_key",
					   "/etc/ssh/ssh_host_dsa_key",
					   "/etc/ssh/ssh_host_ecdsa_key",
					   "/etc/ssh/ssh_host_ed25519_key" };
/* Directories of /etc seen empty: the daemons' configuration, TLS private keys. */
static const char *const etc_hidden[] = { "/etc/rolloutd", "/etc/ssl/private" };

/* Covers host path `path` in the tree at `tree`: the empty file over a file, an empty
 * read-only tmpfs over a directory. Paths that are not in the tree (outside the bound
 * directories) and symlinks (which could lead out of the tree) are left alone. */
static int cover(const struct sbx_runtime *rt, const char *tree, const char *path, bool dir)
{
	char real[PATH_MAX], dst[PATH_MAX + 300];
	if (!realpath(path, real))
		return 0;
	snprintf(dst, sizeof(dst), "%s%s", tree, real);
	struct stat st;
	if (lstat(dst, &st) < 0 || S_ISLNK(st.st_mode) || (bool)S_ISDIR(st.st_mode) != dir)
		return 0;
	if (dir)
		return mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "size=4k,mode=0755") < 0
			   ? -errno
			   : 0;
	if (mount(rt->empty, dst, NULL, MS_BIND, NULL) < 0)
		return -errno;
	return mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL) < 0
		   ? -errno
		   : 0;
}

/* Builds the SBX_ROOT_SYSTEM tree on the directory `tree`, in the caller's mount namespace:
 * a small tmpfs holding the system directories' binds and empty directories, the secrets
 * and hidden directories covered, everything read-only. Runs in the pool, or in a sandbox's
 * child when the pool is not root. */
static int build_system_tree(const struct sbx_runtime *rt, const char *tree)
{
	char src[64], dst[512], link[256];
	struct stat st;
	if (mount("tmpfs", tree, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++) {
		snprintf(src, sizeof(src), "/%s", system_dirs[i]);
		snprintf(dst, sizeof(dst), "%s/%s", tree, system_dirs[i]);
		if (lstat(src, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			ssize_t n = readlink(src, link, sizeof(link) - 1);
			if (n < 0)
				return -errno;
			link[n] = 0;
			if (symlink(link, dst) < 0)
				return -errno;
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(dst, 0755) < 0 || mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
				return -errno;
		}
	}
	for (size_t i = 0; i < sizeof(empty_dirs) / sizeof(empty_dirs[0]); i++) {
		snprintf(dst, sizeof(dst), "%s/%s", tree, empty_dirs[i]);
		if (mkdir(dst, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	snprintf(dst, sizeof(dst), "%s/var/tmp", tree);
	if (symlink("../tmp", dst) < 0)
		return -errno;
	int rc;
	for (size_t i = 0; i < sizeof(etc_secrets) / sizeof(etc_secrets[0]); i++)
		if ((rc = cover(rt, tree, etc_secrets[i], false)))
			return rc;
	for (int i = 0; i < rt->nmasks; i++)
		if ((rc = cover(rt, tree, rt->masks[i], false)))
			return rc;
	for (size_t i = 0; i < sizeof(etc_hidden) / sizeof(etc_hidden[0]); i++)
		if ((rc = cover(rt, tree, etc_hidden[i], true)))
			return rc;
	for (int i = 0; i < rt->nhidden; i++)
		if ((rc = cover(rt, tree, rt->hidden[i], true)))
			return rc;
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
	if (syscall(SYS_mount_setattr, AT_FDCWD, tree, AT_RECURSIVE, &ro, sizeof(ro)) == 0)
		return 0;
	/* Kernels before 5.12: the tmpfs and each bind (not what lies below a bind). */
	if (mount(NULL, tree, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(system_dirs) / sizeof(system_dirs[0]); i++) {
		snprintf(dst, sizeof(dst), "%s/%s", tree, system_dirs[i]);
		if (lstat(dst, &st) == 0 && S_ISDIR(st.st_mode) &&
		    mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
			return -errno;
	}
	return 0;
}

int sbx_runtime_own_mounts(struct sbx_runtime *rt)
{
	if (rt->userns || rt->own_mounts)
		return 0;
	/* A slave before the first mount: nothing made here propagates to the host. */
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return -errno;
	rt->own_mounts = true;
	return 0;
}

int sbx_runtime_system_root(struct sbx_runtime *rt)
{
	if (rt->userns || rt->system_ready)
		return 0;
	snprintf(rt->system_root, sizeof(rt->system_root), "%s.system", rt->staging);
	if (mkdir(rt->system_root, 0755) < 0 && errno != EEXIST)
		return -errno;
	int rc = sbx_runtime_own_mounts(rt);
	if (rc)
		return rc;
	rc = build_system_tree(rt, rt->system_root);
	if (rc)
		return rc;
	rt->system_ready = true;
	return 0;
}

void sbx_runtime_free(struct sbx_runtime *rt)
{
	while (rt->nnetns > 0)
		close(rt->netns[--rt->nnetns]);
	if (rt->host_netns >= 0)
		close(rt->host_netns);
	rt->host_netns = -1;
	free(rt->seccomp_prog);
	rt->seccomp_prog = NULL;
}

struct child_arg {
	const struct sbx_runtime *rt;
	const struct sbx_profile *p;
	int fd;      /* init's end of the socketpair */
	int netns;   /* pre-created network namespace to enter, or -1 for a fresh one */
	int sync_fd; /* read end: one byte once the parent placed us in the cgroup */
	uint32_t uid;
	uint64_t slot; /* spreads sandboxes over the NUMA nodes' cpusets */
	int idmap;     /* image profiles: the user namespace whose map the layers are mounted with */
	const struct sbx_from *from; /* snapshot layers, or NULL */
};

static int bind_dev(const char *root, const char *name)
{
	char dst[512], src[64];
	snprintf(dst, sizeof(dst), "%s/dev/%s", root, name);
	snprintf(src, sizeof(src), "/dev/%s", name);
	int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	close(fd);
	return mount(src, dst, NULL, MS_BIND, NULL) < 0 ? -errno : 0;
}

static int mount_at(const char *root, const char *dir, const char *fstype, unsigned long flags,
		    const char *opts)
{
	char p[512];
	snprintf(p, sizeof(p), "%s%s", root, dir);
	return mount(fstype, p, fstype, flags, opts) < 0 ? -errno : 0;
}

/* The sandbox's file system view: the profile root read-only (the system tree, the host's
 * root or an image), a private tmpfs on /tmp (the
 * work area), a minimal /dev, a fresh /proc, and empty read-only /run and /sys. */
static int setup_fs(const struct sbx_runtime *rt, const struct sbx_profile *p, const struct child_arg *a)
{
	const char *root = rt->staging;
	char opts[128], image_dir[300];
	uint32_t uid = a->uid;
	int rc;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	if (p->image) {
		if ((rc = sbx_image_root(rt, p, a->from, a->idmap, a->uid, image_dir, sizeof(image_dir))))
			return rc;
		root = image_dir;
	} else if (sbx_profile_system(p)) {
		/* This namespace's copy of the tree the pool built, read-only already; without
		 * one (no root), a tree of our own, which costs a few mounts more. */
		if (rt->system_ready)
			root = rt->system_root;
		else if ((rc = build_system_tree(rt, root)))
			return rc;
	} else {
		if (mount(p->root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -errno;
		if ((rc = mask_files(rt, p)))
			return rc;
		struct mount_attr ro = { .attr_set =
					     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
		if (syscall(SYS_mount_setattr, AT_FDCWD, root, AT_RECURSIVE, &ro, sizeof(ro)) < 0 &&
		    mount(NULL, root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
			0)
			return -errno;
	}
	if (p->net && (rc = net_bind_files(p->net, rt->empty, root)))
		return rc; /* read-only binds of their own */
	/* In a user namespace only uid 0 is mapped (to the pool's own uid). */
	uint32_t owner = rt->userns ? 0 : uid;
	snprintf(opts, sizeof(opts), "size=%um,mode=0755,uid=%u,gid=%u", p->workdir_mb, owner, owner);
	/* An image sandbox's /tmp is part of its writable root (and of its snapshots). */
	if (!p->image && (rc = mount_at(root, "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)))
		return rc;
	if ((rc = mount_at(root, "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")))
		return rc;
	static const char *devs[] = { "null", "zero", "full", "random", "urandom" };
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++)
		if ((rc = bind_dev(root, devs[i])))
			return rc;
	char p2[512];
	snprintf(p2, sizeof(p2), "%s/dev/shm", root);
	mkdir(p2, 01777);
	snprintf(opts, sizeof(opts), "size=%um,mode=1777", p->workdir_mb / 4 + 1);
	if ((rc = mount_at(root, "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts)))
		return rc;
	static const char *links[][2] = { { "/proc/self/fd", "fd" },
					  { "/proc/self/fd/0", "stdin" },
					  { "/proc/self/fd/1", "stdout" },
					  { "/proc/self/fd/2", "stderr" } };
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		snprintf(p2, sizeof(p2), "%s/dev/%s", root, links[i][1]);
		symlink(links[i][0], p2);
	}
	if ((rc = mount_at(root, "/dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
			   NULL)))
		return rc;
	if ((rc = mount_at(root, "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)))
		return rc;
	if (!p->image && (rc = mount_at(root, "/run", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
					"size=4k,mode=0755")))
		return rc;
	if ((rc = mount_at(root, "/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			   "size=4k,mode=0755")))
		return rc;
	/* Make the staging tree the root and drop the host's. */
	if (chdir(root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 ||
	    chdir("/") < 0)
		return -errno;
	return 0;
}

/* The pool's stdio is not the sandbox's business: the sandbox's own /dev/null on 0-2. */
static int stdio_to_null(void)
{
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return -errno;
	for (int i = 0; i < 3; i++)
		if (fd != i && dup2(fd, i) < 0)
			return -errno;
	if (fd > 3)
		close(fd);
	return 0;
}

static int loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	int rc = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!rc && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		rc = -errno;
	close(s);
	return rc;
}

static int set_limit(int res, uint64_t v)
{
	struct rlimit rl = { v, v };
	return setrlimit(res, &rl) < 0 ? -errno : 0;
}

static int drop_privileges(uint32_t uid, bool userns)
{
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
			break;
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (!userns) {
		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			return -errno;
	}
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

/* Reports the setup result to the pool: 0, or -errno with the step that failed. */
static void report(int fd, int32_t rc, int32_t step)
{
	int32_t msg[2] = { rc, step };
	ssize_t n = write(fd, msg, sizeof(msg));
	(void)n;
}

static int child_main(void *argp)
{
	struct child_arg *a = argp;
	const struct sbx_profile *p = a->p;
	int step = 0, rc = 0;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Signals: everything default and unblocked, as a fresh process has them. */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	/* Only what the pool and zygote changed; the rest is default already. */
	static const int changed[] = { SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2 };
	for (size_t s = 0; s < sizeof(changed) / sizeof(changed[0]); s++)
		signal(changed[s], SIG_DFL);
	char go;
	if (read(a->sync_fd, &go, 1) != 1)
		_exit(1); /* the pool went away before we were placed */
	/* A pre-created network namespace (loopback already up) replaces a fresh one. */
	if (a->netns >= 0 && setns(a->netns, CLONE_NEWNET) < 0)
		_exit(1);
	/* Only the socket to the pool stays open, as fd 3. */
	if (dup2(a->fd, 3) < 0)
		_exit(1);
	/* The idmap namespace of an image sandbox is needed until its root is mounted. */
	if (a->idmap >= 0) {
		if (a->idmap != 5 && dup3(a->idmap, 5, O_CLOEXEC) < 0)
			_exit(1);
		a->idmap = 5;
		syscall(SYS_close_range, 6, ~0u, 0);
		close(4);
	} else {
		syscall(SYS_close_range, 4, ~0u, 0);
	}
	int fd = 3;
	/* dup2 cleared close-on-exec: commands must not inherit the pool's socket. */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
#define STEP(expr)                     \
	do {                           \
		step++;                \
		if ((rc = (expr)) < 0) \
			goto fail;     \
	} while (0)
	STEP(setup_fs(a->rt, p, a));
	if (a->idmap >= 0)
		close(a->idmap);
	STEP(stdio_to_null());
	STEP(sethostname(p->hostname, strlen(p->hostname)) < 0 ? -errno : 0);
	if (a->netns < 0)
		STEP(loopback_up());
	if (a->rt->nnode_cpus > 0)
		STEP(sched_setaffinity(0, sizeof(cpu_set_t),
				       &a->rt->node_cpus[a->slot % (unsigned)a->rt->nnode_cpus]) < 0
			 ? -errno
			 : 0);
	/* Below the daemons: a busy sandbox never starves the pool, the zygote or rolloutd. */
	STEP(setpriority(PRIO_PROCESS, 0, 5) < 0 ? -errno : 0);
	STEP(set_limit(RLIMIT_NOFILE, p->nofile));
	STEP(set_limit(RLIMIT_FSIZE, (uint64_t)p->file_mb << 20));
	STEP(set_limit(RLIMIT_CORE, 0));
	STEP(p->pids ? set_limit(RLIMIT_NPROC, p->pids) : 0);
	STEP(drop_privileges(a->uid, a->rt->userns));
	/* The credential change cleared the parent-death signal: set it again. */
	STEP(prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ? -errno : 0);
	STEP(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0);
	STEP(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, a->rt->seccomp_prog) < 0
		 ? -errno
		 : 0);
	STEP(chdir(p->img && p->img->cwd ? p->img->cwd : "/tmp") < 0 ? -errno : 0);
	/* Not dumpable: commands running as the same uid cannot open /proc/1/mem or ptrace
	 * their way into init (exec makes them dumpable again, init stays not). */
	STEP(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ? -errno : 0);
#undef STEP
	report(fd, 0, 0);
	sbx_init_main(a->rt, p, fd, a->uid);
fail:
	report(fd, rc, step);
	_exit(1);
}

static int read_full_timeout(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int n = poll(&pf, 1, timeout_ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int sbx_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int rc = n < 0 ? -errno : (size_t)n == strlen(s) ? 0 : -EIO;
	close(fd);
	return rc;
}

int sbx_netns_fill(struct sbx_runtime *rt, int want)
{
	if (want > SBX_NETNS_STOCK)
		want = SBX_NETNS_STOCK;
	if (rt->host_netns < 0 || rt->userns)
		return rt->nnetns;
	while (rt->nnetns < want) {
		if (unshare(CLONE_NEWNET) < 0)
			break;
		int fd = loopback_up() == 0 ? open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC) : -1;
		if (setns(rt->host_netns, CLONE_NEWNET) < 0)
			abort(); /* cannot get back to the pool's network: nothing sane to do */
		if (fd < 0)
			break;
		rt->netns[rt->nnetns++] = fd;
	}
	return rt->nnetns;
}

int sbx_create(struct sbx_runtime *rt, const struct sbx_profile *p, uint64_t id, const struct sbx_from *from,
	       struct sbx *out)
{
	memset(out, 0, sizeof(*out));
	out->id = id;
	out->profile = p;
	out->pid = -1;
	out->pidfd = -1;
	out->fd = -1;
	out->net_slot = -1;
	snprintf(out->cgname, sizeof(out->cgname), "sbx-%llu", (unsigned long long)id);
	out->uid = p->uid_base + (uint32_t)(rt->next_uid_slot++ % (p->uid_count ? p->uid_count : 1));

	int rc;
	if (rt->cgroups) {
		struct cg_limits l = { .memory_bytes = (uint64_t)p->memory_mb << 20,
				       .pids = p->pids,
				       .cpu_percent = p->cpu_percent };
		if ((rc = cg_create(&rt->cg, out->cgname, &l)))
			goto fail;
	}
	int sv[2], sync[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		goto fail;
	}
	/* Puts and gets of tens of MiB cross this pair: with 4 MiB in flight each way instead
	 * of the default ~200 KiB, a transfer takes 20 times fewer wake-ups of init and of the
	 * pool's loop. Best effort: beyond net.core.wmem_max it takes CAP_NET_ADMIN. */
	int sndbuf = SBX_SOCKET_BUFFER;
	for (int i = 0; i < 2; i++)
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (pipe2(sync, O_CLOEXEC) < 0) {
		rc = -errno;
		close(sv[0]);
		close(sv[1]);
		goto fail;
	}
	static void *stack;
	if (!stack) {
		stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED) {
			stack = NULL;
			rc = -ENOMEM;
			goto fail_fds;
		}
	}
	/* An egress sandbox's namespace is given its veth before the child enters it. */
	if (p->net && rt->net && rt->nnetns == 0)
		sbx_netns_fill(rt, 1);
	int netns = rt->nnetns > 0 ? rt->netns[--rt->nnetns] : -1;
	if (p->net && rt->net && (netns < 0 || (rc = net_attach(rt->net, p->net, netns, &out->net_slot)))) {
		rc = netns < 0 ? -EAGAIN : rc;
		if (netns >= 0)
			close(netns);
		goto fail_fds;
	}
	int idmap = -1;
	if (p->image && (idmap = p->img ? idmap_get(rt, out->uid, p->img->uid, p->img->gid) : -EAGAIN) < 0) {
		rc = idmap;
		if (netns >= 0)
			close(netns);
		goto fail_fds;
	}
	struct child_arg arg = { rt, p, sv[1], netns, sync[0], out->uid, id, idmap, from };
	int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
	if (netns < 0)
		flags |= CLONE_NEWNET;
	if (rt->userns)
		flags |= CLONE_NEWUSER;
	pid_t pid = clone(child_main, (char *)stack + STACK_SIZE, flags | SIGCHLD, &arg);
	if (netns >= 0)
		close(netns);
	if (pid < 0) {
		rc = -errno;
		goto fail_fds;
	}
	out->pid = pid;
	close(sv[1]);
	close(sync[0]);
	out->fd = sv[0];
	out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (rt->cgroups && (rc = cg_attach(&rt->cg, out->cgname, pid))) {
		close(sync[1]);
		goto fail;
	}
	if (rt->userns) {
		/* Without its maps the child would run as the overflow uid: fail the creation. */
		char path[64], map[64];
		snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
		rc = sbx_write_str(path, "deny");
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)geteuid());
		snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
		if (!rc)
			rc = sbx_write_str(path, map);
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)getegid());
		snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
		if (!rc)
			rc = sbx_write_str(path, map);
		if (rc) {
			close(sync[1]);
			goto fail;
		}
	}
	if (rt->cgroups)
		out->oom_before = cg_oom_kills(&rt->cg, out->cgname);
	ssize_t w = write(sync[1], "g", 1);
	close(sync[1]);
	if (w != 1) {
		rc = -EPIPE;
		goto fail;
	}
	int32_t status[2];
	if ((rc = read_full_timeout(out->fd, status, sizeof(status), 5000)))
		goto fail;
	if (status[0]) {
		rc = status[0];
		goto fail;
	}
	if (fcntl(out->fd, F_SETFL, O_NONBLOCK) < 0) {
		rc = -errno;
		goto fail;
	}
	return 0;
fail_fds:
	close(sv[0]);
	close(sv[1]);
	close(sync[0]);
	close(sync[1]);
fail:
	sbx_destroy(rt, out);
	return rc;
}

void sbx_destroy(struct sbx_runtime *rt, struct sbx *s)
{
	if (s->pid > 0) {
		/* A sandbox frozen for a snapshot dies only once thawed (cgroup v1). */
		if (rt->cgroups && s->profile && s->profile->image)
			cg_freeze(&rt->cg, s->cgname, false);
		/* SIGKILL to the pid namespace's init takes every process in it along. */
		if (s->pidfd >= 0)
			syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
		else
			kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		s->pid = -1;
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->pidfd >= 0)
		close(s->pidfd);
	s->fd = s->pidfd = -1;
	if (s->net_slot >= 0 && rt->net && s->profile)
		net_detach(rt->net, s->profile->net, s->net_slot);
	s->net_slot = -1;
	if (rt->cgroups && s->cgname[0]) {
		/* The namespace's other processes die asynchronously; the group can only go
		 * once it is empty. */
		for (int i = 0; i < 200 && cg_count(&rt->cg, s->cgname) > 0; i++) {
			cg_kill(&rt->cg, s->cgname);
			usleep(i < 20 ? 100 : 5000);
		}
		cg_destroy(&rt->cg, s->cgname);
		s->cgname[0] = 0;
	}
}
