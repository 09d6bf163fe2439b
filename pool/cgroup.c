/* cgroup limits for sandboxes: one group per sandbox under <root>/rollout-pool/, in the
 * unified hierarchy (v2) or in the memory, pids and cpu controllers of v1. The pool uses
 * it to cap a sandbox, to learn whether the memory limit killed something, to kill
 * whatever is left, and to clean up groups a crashed pool left behind. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int write_file(const char *dir, const char *file, const char *val)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int read_file(const char *dir, const char *file, char *buf, size_t cap)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int rc = n < 0 ? -errno : (int)n;
	close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return rc;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int mkdir_p(const char *p)
{
	if (mkdir(p, 0755) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

int cg_init(struct cg_sys *s, const char *root, const char *group)
{
	memset(s, 0, sizeof(*s));
	struct statfs fs;
	if (!root)
		root = "/sys/fs/cgroup";
	if (statfs(root, &fs) < 0)
		return -errno;
	if (fs.f_type == CGROUP2_SUPER_MAGIC) {
		s->version = 2;
		if ((size_t)snprintf(s->dir[CG_UNIFIED], sizeof(s->dir[0]), "%s/%s", root, group) >=
		    sizeof(s->dir[0]))
			return -ENAMETOOLONG;
		int rc = mkdir_p(s->dir[CG_UNIFIED]);
		if (rc)
			return rc;
		/* Controllers must be enabled in every ancestor's subtree_control; the root's
		 * may already be (systemd), or writable (we are root in a private cgroupns). */
		write_file(root, "cgroup.subtree_control", "+memory +pids +cpu");
		rc = write_file(s->dir[CG_UNIFIED], "cgroup.subtree_control", "+memory +pids +cpu");
		if (rc)
			return rc;
		return 0;
	}
	static const char *ctl[CG_NCTL] = { [CG_MEMORY] = "memory", [CG_PIDS] = "pids", [CG_CPU] = "cpu" };
	for (int i = 0; i < CG_NCTL; i++) {
		char base[PATH_MAX];
		if (!ctl[i])
			continue;
		snprintf(base, sizeof(base), "%s/%s", root, ctl[i]);
		if (!is_dir(base) && i == CG_CPU)
			snprintf(base, sizeof(base), "%s/cpu,cpuacct", root);
		if (!is_dir(base))
			return -ENOENT;
		if ((size_t)snprintf(s->dir[i], sizeof(s->dir[0]), "%s/%s", base, group) >= sizeof(s->dir[0]))
			return -ENAMETOOLONG;
		int rc = mkdir_p(s->dir[i]);
		if (rc)
			return rc;
	}
	s->version = 1;
	/* Freezing is for snapshots only: groups there are made when one is taken. */
	char fz[PATH_MAX];
	snprintf(fz, sizeof(fz), "%s/freezer", root);
	if (is_dir(fz) &&
	    (size_t)snprintf(s->freezer, sizeof(s->freezer), "%s/%s", fz, group) < sizeof(s->freezer) &&
	    mkdir_p(s->freezer) != 0)
		s->freezer[0] = 0;
	return 0;
}

static void path_of(const struct cg_sys *s, int ctl, const char *name, char *out, size_t cap)
{
	if ((size_t)snprintf(out, cap, "%s/%s", s->dir[s->version == 2 ? CG_UNIFIED : ctl], name) >= cap)
		out[0] = 0; /* cannot happen with the pool's short names; an empty path fails cleanly */
}

static bool wait_for(const char *dir, const char *file, const char *want)
{
	char buf[256];
	for (int i = 0; i < 2000; i++) {
		if (read_file(dir, file, buf, sizeof(buf)) > 0 && strstr(buf, want))
			return true;
		usleep(i < 100 ? 50 : 1000);
	}
	return false;
}

/* Moves every process of the v1 group into its freezer group; the number moved. */
static int move_to_freezer(const struct cg_sys *s, const char *name, const char *fdir)
{
	char p[PATH_MAX], buf[16384];
	path_of(s, CG_PIDS, name, p, sizeof(p));
	if (read_file(p, "cgroup.procs", buf, sizeof(buf)) < 0)
		return 0;
	int moved = 0;
	for (char *c = buf, *end; *c; c = end) {
		long pid = strtol(c, &end, 10);
		if (end == c)
			break;
		char v[32];
		snprintf(v, sizeof(v), "%ld", pid);
		/* Already there: writing again is harmless; gone: nothing to freeze. */
		if (write_file(fdir, "cgroup.procs", v) == 0)
			moved++;
		while (*end == '\n')
			end++;
	}
	return moved;
}

int cg_freeze(const struct cg_sys *s, const char *name, bool freeze)
{
	char p[PATH_MAX];
	if (s->version == 2) {
		path_of(s, CG_UNIFIED, name, p, sizeof(p));
		int rc = write_file(p, "cgroup.freeze", freeze ? "1" : "0");
		if (rc || !freeze)
			return rc;
		return wait_for(p, "cgroup.events", "frozen 1") ? 0 : -ETIMEDOUT;
	}
	if (s->version != 1 || !s->freezer[0])
		return -ENOTSUP;
	if ((size_t)snprintf(p, sizeof(p), "%s/%s", s->freezer, name) >= sizeof(p))
		return -ENAMETOOLONG;
	if (!freeze)
		return write_file(p, "freezer.state", "THAWED");
	int rc = mkdir_p(p);
	if (rc)
		return rc;
	/* A process that forks between the listing and the freeze leaves its child behind:
	 * list again once frozen (nothing forks then) until nobody is left outside. */
	for (int round = 0; round < 10; round++) {
		move_to_freezer(s, name, p);
		if ((rc = write_file(p, "freezer.state", "FROZEN")))
			return rc;
		if (!wait_for(p, "freezer.state", "FROZEN"))
			return -ETIMEDOUT;
		char a[PATH_MAX], in_pids[16384], in_fz[16384];
		path_of(s, CG_PIDS, name, a, sizeof(a));
		if (read_file(a, "cgroup.procs", in_pids, sizeof(in_pids)) < 0 ||
		    read_file(p, "cgroup.procs", in_fz, sizeof(in_fz)) < 0)
			return -EIO;
		bool all = true;
		for (char *c = in_pids, *end; *c && all; c = end) {
			long pid = strtol(c, &end, 10);
			if (end == c)
				break;
			char line[32];
			snprintf(line, sizeof(line), "%ld\n", pid);
			/* Membership by line: prefix the listing with a newline for the first. */
			char *hit = strstr(in_fz, line);
			all = hit && (hit == in_fz || hit[-1] == '\n');
			while (*end == '\n')
				end++;
		}
		if (all)
			return 0;
	}
	return -EAGAIN;
}

int cg_create(const struct cg_sys *s, const char *name, const struct cg_limits *l)
{
	char p[PATH_MAX], v[64];
	int rc = 0;
	if (!s->version)
		return 0;
	int nctl = s->version == 2 ? 1 : CG_NCTL;
	for (int i = 0; i < nctl; i++) {
		path_of(s, i, name, p, sizeof(p));
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	if (s->version == 2) {
		path_of(s, 0, name, p, sizeof(p));
		if (l->memory_bytes) {
			snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
			rc = rc ? rc : write_file(p, "memory.max", v);
			write_file(p, "memory.swap.max", "0");
		}
		if (l->pids) {
			snprintf(v, sizeof(v), "%u", l->pids);
			rc = rc ? rc : write_file(p, "pids.max", v);
		}
		if (l->cpu_percent) {
			snprintf(v, sizeof(v), "%u 100000", l->cpu_percent * 1000);
			rc = rc ? rc : write_file(p, "cpu.max", v);
		}
		return rc;
	}
	if (l->memory_bytes) {
		path_of(s, CG_MEMORY, name, p, sizeof(p));
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
		rc = write_file(p, "memory.limit_in_bytes", v);
		write_file(p, "memory.memsw.limit_in_bytes", v); /* absent without swap accounting */
	}
	if (!rc && l->pids) {
		path_of(s, CG_PIDS, name, p, sizeof(p));
		snprintf(v, sizeof(v), "%u", l->pids);
		rc = write_file(p, "pids.max", v);
	}
	if (!rc && l->cpu_percent) {
		path_of(s, CG_CPU, name, p, sizeof(p));
		snprintf(v, sizeof(v), "%u", l->cpu_percent * 1000);
		rc = write_file(p, "cpu.cfs_period_us", "100000");
		rc = rc ? rc : write_file(p, "cpu.cfs_quota_us", v);
	}
	return rc;
}

int cg_attach(const struct cg_sys *s, const char *name, pid_t pid)
{
	char p[PATH_MAX], v[32];
	if (!s->version)
		return 0;
	snprintf(v, sizeof(v), "%d", (int)pid);
	int nctl = s->version == 2 ? 1 : CG_NCTL;
	for (int i = 0; i < nctl; i++) {
		path_of(s, i, name, p, sizeof(p));
		int rc = write_file(p, "cgroup.procs", v);
		if (rc)
			return rc;
	}
	return 0;
}

/* Number of processes in the group (from the pids controller or the unified group). */
int cg_count(const struct cg_sys *s, const char *name)
{
	char p[PATH_MAX], buf[4096];
	if (!s->version)
		return 0;
	path_of(s, CG_PIDS, name, p, sizeof(p));
	int n = read_file(p, "cgroup.procs", buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? 0 : n;
	int count = 0;
	for (char *c = buf; *c; c++)
		count += *c == '\n';
	return count;
}

void cg_kill(const struct cg_sys *s, const char *name)
{
	char p[PATH_MAX], buf[8192];
	if (!s->version)
		return;
	path_of(s, CG_PIDS, name, p, sizeof(p));
	if (s->version == 2 && write_file(p, "cgroup.kill", "1") == 0)
		return;
	if (read_file(p, "cgroup.procs", buf, sizeof(buf)) <= 0)
		return;
	for (char *c = buf, *end; *c; c = end) {
		long pid = strtol(c, &end, 10);
		if (end == c)
			break;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
		while (*end == '\n')
			end++;
	}
}

int cg_destroy(const struct cg_sys *s, const char *name)
{
	char p[PATH_MAX];
	int rc = 0;
	if (!s->version)
		return 0;
	int nctl = s->version == 2 ? 1 : CG_NCTL;
	for (int i = 0; i < nctl; i++) {
		path_of(s, i, name, p, sizeof(p));
		if (rmdir(p) < 0 && errno != ENOENT)
			rc = -errno;
	}
	if (s->version == 1 && s->freezer[0] &&
	    (size_t)snprintf(p, sizeof(p), "%s/%s", s->freezer, name) < sizeof(p) && rmdir(p) < 0 &&
	    errno != ENOENT)
		rc = -errno;
	return rc;
}

static uint64_t field(const char *buf, const char *key)
{
	const char *at = strstr(buf, key);
	return at ? strtoull(at + strlen(key), NULL, 10) : 0;
}

uint64_t cg_oom_kills(const struct cg_sys *s, const char *name)
{
	char p[PATH_MAX], buf[1024];
	if (!s->version)
		return 0;
	path_of(s, CG_MEMORY, name, p, sizeof(p));
	if (s->version == 2)
		return read_file(p, "memory.events", buf, sizeof(buf)) > 0 ? field(buf, "oom_kill ") : 0;
	if (read_file(p, "memory.oom_control", buf, sizeof(buf)) > 0 && strstr(buf, "oom_kill "))
		return field(buf, "oom_kill ");
	return read_file(p, "memory.failcnt", buf, sizeof(buf)) > 0 ? strtoull(buf, NULL, 10) : 0;
}

uint64_t cg_memory_peak(const struct cg_sys *s, const char *name)
{
	char p[PATH_MAX], buf[64];
	if (!s->version)
		return 0;
	path_of(s, CG_MEMORY, name, p, sizeof(p));
	const char *f = s->version == 2 ? "memory.peak" : "memory.max_usage_in_bytes";
	return read_file(p, f, buf, sizeof(buf)) > 0 ? strtoull(buf, NULL, 10) : 0;
}

int cg_reap_stale(const struct cg_sys *s)
{
	int reaped = 0;
	if (!s->version)
		return 0;
	DIR *d;
	struct dirent *e;
	if (s->version == 1 && s->freezer[0] && (d = opendir(s->freezer))) {
		/* A pool killed mid-snapshot left its sandbox frozen: thawed, it can die. */
		while ((e = readdir(d)))
			if (e->d_type == DT_DIR && e->d_name[0] != '.') {
				char fz[PATH_MAX];
				if ((size_t)snprintf(fz, sizeof(fz), "%s/%s", s->freezer, e->d_name) <
				    sizeof(fz))
					write_file(fz, "freezer.state", "THAWED");
			}
		closedir(d);
	}
	d = opendir(s->dir[s->version == 2 ? CG_UNIFIED : CG_PIDS]);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		for (int tries = 0; tries < 100 && cg_count(s, e->d_name) > 0; tries++) {
			cg_kill(s, e->d_name);
			usleep(10000);
		}
		if (cg_destroy(s, e->d_name) == 0)
			reaped++;
	}
	closedir(d);
	if (s->version == 1) {
		/* Groups of the other controllers whose pids group was already gone. */
		for (int i = 0; i < CG_NCTL; i++) {
			if (i == CG_PIDS || !(d = opendir(s->dir[i])))
				continue;
			while ((e = readdir(d)))
				if (e->d_type == DT_DIR && e->d_name[0] != '.')
					cg_destroy(s, e->d_name);
			closedir(d);
		}
	}
	return reaped;
}

int cg_list(const struct cg_sys *s)
{
	int n = 0;
	if (!s->version)
		return 0;
	DIR *d = opendir(s->dir[s->version == 2 ? CG_UNIFIED : CG_PIDS]);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_type == DT_DIR && e->d_name[0] != '.';
	closedir(d);
	return n;
}

void cg_fini(const struct cg_sys *s)
{
	int nctl = s->version == 2 ? 1 : s->version == 1 ? CG_NCTL : 0;
	for (int i = 0; i < nctl; i++)
		rmdir(s->dir[i]);
	if (s->version == 1 && s->freezer[0])
		rmdir(s->freezer);
}
