/* The runc baseline of `rollout-bench env` (env_runc.h): an OCI image unpacked once with
 * umoci into a bundle, then `runc run` of one command, timed from fork to exit. What it
 * measures is what a user pays per command without a warm pool. */
#include "env_runc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "bench.h"

#define TAG           "runc_baseline: "
#define BUNDLE_PREFIX "runc-"
#define STAMP         ".rollout-bench-unpacked" /* written once the bundle is whole */

/* Ids of this process's containers: runc refuses an id that is still in use. */
static atomic_uint call_seq;

static bool on_path(const char *tool)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, tool) < (int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		p += n;
		if (*p == ':')
			p++;
	}
	return false;
}

static void redirect_null(int fd)
{
	int n = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (n >= 0) {
		dup2(n, fd);
		close(n);
	}
}

/* Runs argv to completion with stdin (and, when asked, stdout / stderr) on /dev/null.
 * Returns its wait status, or -1 when fork failed. */
static int run_tool(const char *const *argv, bool quiet_out, bool quiet_err)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		redirect_null(STDIN_FILENO);
		if (quiet_out)
			redirect_null(STDOUT_FILENO);
		if (quiet_err)
			redirect_null(STDERR_FILENO);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

/* "exit status 3", "killed by signal 9": what a wait status says, for messages. */
static const char *describe(int st, char *buf, size_t len)
{
	if (st < 0)
		snprintf(buf, len, "fork failed: %s", strerror(errno));
	else if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d%s", WEXITSTATUS(st),
			 WEXITSTATUS(st) == 127 ? " (not found?)" : "");
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT) {
		fprintf(stderr, TAG "cannot remove %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* rm -rf without following links or crossing mounts; a missing dir is not an error. */
static int rm_tree(const char *dir)
{
	struct stat st;
	if (lstat(dir, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0 ? 0 : -1;
}

static bool newer_or_same(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec >= b->tv_nsec);
}

/* The bundle of layout:tag in workdir, unpacked unless a whole one newer than the layout
 * is there already. bundle receives its path. */
static int unpack_once(const char *layout, const char *tag, const char *workdir, char *bundle, size_t len)
{
	char real[PATH_MAX], path[PATH_MAX + 64], image[PATH_MAX + 256];
	struct stat index, stamp;

	if (!realpath(layout, real)) {
		fprintf(stderr, TAG "image layout %s: %s\n", layout, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/index.json", real);
	if (stat(path, &index) != 0) {
		fprintf(stderr, TAG "%s is not an OCI image layout (no index.json)\n", real);
		return -1;
	}
	if (mkdir(workdir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, TAG "workdir %s: %s\n", workdir, strerror(errno));
		return -1;
	}
	/* One bundle per image (FNV-1a of the layout's real path and the tag). */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const char *s = real; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	h = (h ^ ':') * 0x100000001b3ull;
	for (const char *s = tag; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	if ((size_t)snprintf(bundle, len, "%s/" BUNDLE_PREFIX "%016llx", workdir, (unsigned long long)h) >=
	    len) {
		fprintf(stderr, TAG "workdir path too long: %s\n", workdir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/" STAMP, bundle);
	if (stat(path, &stamp) == 0 && newer_or_same(&stamp.st_mtim, &index.st_mtim))
		return 0;

	if (rm_tree(bundle) != 0) {
		fprintf(stderr, TAG "cannot remove the stale bundle %s: %s\n", bundle, strerror(errno));
		return -1;
	}
	snprintf(image, sizeof(image), "%s:%s", real, tag);
	const char *unpack[8];
	size_t n = 0;
	unpack[n++] = "umoci";
	unpack[n++] = "unpack";
	if (geteuid() != 0)
		unpack[n++] = "--rootless"; /* a config.json with a user namespace runc can use */
	unpack[n++] = "--image";
	unpack[n++] = image;
	unpack[n++] = bundle;
	unpack[n] = NULL;
	char why[64];
	int st = run_tool(unpack, true, false);
	if (st != 0) {
		fprintf(stderr, TAG "umoci unpack --image %s: %s\n", image, describe(st, why, sizeof(why)));
		rm_tree(bundle);
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, TAG "%s: %s\n", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* config.json's process: argv, no terminal. Everything else stays as umoci wrote it. */
static int set_process(const char *bundle, const char *const *argv)
{
	char path[PATH_MAX + 16];
	json_error_t err;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/config.json", bundle);
	json_t *root = json_load_file(path, 0, &err);
	if (!root) {
		fprintf(stderr, TAG "%s:%d: %s\n", path, err.line, err.text);
		return -1;
	}
	json_t *process = json_object_get(root, "process");
	json_t *args = json_array();
	if (!json_is_object(process) || !args) {
		fprintf(stderr, TAG "%s: no process object\n", path);
		goto out;
	}
	for (const char *const *a = argv; *a; a++)
		if (json_array_append_new(args, json_string(*a)) != 0) {
			fprintf(stderr, TAG "argument is not UTF-8: %s\n", *a);
			goto out;
		}
	if (json_object_set(process, "args", args) != 0 ||
	    json_object_set_new(process, "terminal", json_false()) != 0) {
		fprintf(stderr, TAG "%s: cannot set process\n", path);
		goto out;
	}
	if (json_dump_file(root, path, JSON_INDENT(2)) != 0) {
		fprintf(stderr, TAG "cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	json_decref(args);
	json_decref(root);
	return rc;
}

int runc_baseline(const char *layout, const char *tag, const char *workdir, const char *const *argv,
		  unsigned runs, uint64_t *samples_us)
{
	char bundle[PATH_MAX], id[96], why[64];

	if (!layout || !tag || !workdir || !argv || !argv[0] || (runs && !samples_us)) {
		fprintf(stderr, TAG "bad arguments\n");
		return -1;
	}
	static const char *const tools[][2] = { { "umoci", "umoci" }, { "runc", "runc" } };
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		if (!on_path(tools[i][0])) {
			fprintf(stderr, TAG "%s is not installed (Debian package %s)\n", tools[i][0],
				tools[i][1]);
			return -1;
		}
	if (unpack_once(layout, tag, workdir, bundle, sizeof(bundle)) != 0 || set_process(bundle, argv) != 0)
		return -1;

	unsigned seq = atomic_fetch_add(&call_seq, 1);
	for (unsigned i = 0; i < runs; i++) {
		snprintf(id, sizeof(id), "rollout-bench-%ld-%u-%u", (long)getpid(), seq, i);
		const char *run[] = { "runc", "run", "--bundle", bundle, id, NULL };
		uint64_t t0 = bench_now_ns();
		int st = run_tool(run, true, false);
		uint64_t us = (bench_now_ns() - t0) / 1000;
		samples_us[i] = us ? us : 1;
		/* runc run removes a container that exited; one it lost track of (runc killed,
		 * a failed start) would keep its id, cgroup and state dir. Not timed. */
		const char *del[] = { "runc", "delete", "-f", id, NULL };
		run_tool(del, true, true);
		if (st != 0) {
			fprintf(stderr, TAG "run %u of %u (runc run --bundle %s %s): %s\n", i + 1, runs,
				bundle, id, describe(st, why, sizeof(why)));
			return -1;
		}
	}
	return 0;
}

int runc_baseline_clean(const char *workdir)
{
	char path[PATH_MAX];
	int rc = 0;
	DIR *d = opendir(workdir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		fprintf(stderr, TAG "workdir %s: %s\n", workdir, strerror(errno));
		return -1;
	}
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, BUNDLE_PREFIX, strlen(BUNDLE_PREFIX)) != 0 ||
		    strlen(e->d_name) != strlen(BUNDLE_PREFIX) + 16)
			continue;
		snprintf(path, sizeof(path), "%s/%s", workdir, e->d_name);
		if (rm_tree(path) != 0) {
			fprintf(stderr, TAG "cannot remove %s\n", path);
			rc = -1;
		}
	}
	closedir(d);
	return rc;
}
