/* The zygote: a single-threaded child forked by rollout-pool before it starts any thread
 * (ZeroMQ, HTTP). It creates and destroys sandboxes on request, so cloning never happens in
 * a multithreaded process and slow creations and teardowns never block the pool's event
 * loop. It dies with the pool (PDEATHSIG), and every sandbox init dies with it. */
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ring.h" /* shm_send_fds / shm_recv_fds */

#define ZY_NETNS_TARGET 64
#define ZY_IDMAP_AHEAD  16 /* idmaps made ahead per image profile */

struct zslot {
	bool used;
	struct sbx s;
};

static struct zslot *slots;
static size_t nslots;

static struct zslot *find(uint64_t id)
{
	for (size_t i = 0; i < nslots; i++)
		if (slots[i].used && slots[i].s.id == id)
			return &slots[i];
	return NULL;
}

static struct zslot *alloc_slot(void)
{
	for (size_t i = 0; i < nslots; i++)
		if (!slots[i].used)
			return &slots[i];
	size_t n = nslots ? nslots * 2 : 256;
	struct zslot *p = realloc(slots, n * sizeof(*p));
	if (!p)
		return NULL;
	memset(p + nslots, 0, (n - nslots) * sizeof(*p));
	slots = p;
	size_t first = nslots;
	nslots = n;
	return &slots[first];
}

static void destroy_all(struct sbx_runtime *rt)
{
	for (size_t i = 0; i < nslots; i++)
		if (slots[i].used) {
			sbx_destroy(rt, &slots[i].s);
			slots[i].used = false;
		}
}

/* Sandbox inits are clones of the zygote, and /proc/1/cmdline inside a sandbox shows the
 * argument area they inherited: the pool's command line, config path included. Blank it
 * (the area, not argv: nothing here uses argv again) before any sandbox exists. */
static void hide_cmdline(void)
{
	FILE *f = fopen("/proc/self/stat", "re");
	if (!f)
		return;
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* Fields after the command name (which may hold spaces and parentheses): the state
	 * (field 3, a letter) then numbers from field 4; arg_start and arg_end are 48, 49. */
	char *p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return;
	unsigned long long v[52] = { 0 };
	int field = 3;
	for (p += 3; *p && field < 51;) {
		char *end;
		unsigned long long x = strtoull(p, &end, 10);
		if (end == p) {
			p++;
			continue;
		}
		v[++field] = x;
		p = end;
	}
	if (field < 49 || v[49] <= v[48])
		return;
	char *start = (char *)(uintptr_t)v[48];
	size_t len = (size_t)(v[49] - v[48]);
	static const char name[] = "rollout-zygote";
	memset(start, 0, len);
	memcpy(start, name, len > sizeof(name) ? sizeof(name) : len - 1);
}

/* A profile's image, as the pool sent it (see zy_image): the zygote's copy of the profile
 * points into it from then on. */
static void install_image(struct sbx_profile *p, const char *data, size_t len)
{
	const char *end = data + len, *s = data;
	const char *field[4];
	for (int i = 0; i < 4; i++) {
		field[i] = s;
		s += strnlen(s, (size_t)(end - s)) + 1;
		if (s > end)
			return;
	}
	struct sbx_image *img = calloc(1, sizeof(*img));
	if (!img)
		return;
	snprintf(img->id, sizeof(img->id), "%s", field[0]);
	img->uid = (uint32_t)strtoul(field[1], NULL, 10);
	img->gid = (uint32_t)strtoul(field[2], NULL, 10);
	img->cwd = strdup(field[3]);
	size_t cap = 0;
	while (s < end && *s) {
		if (img->nlayers == cap) {
			char **l = realloc(img->layers, (cap = cap ? cap * 2 : 8) * sizeof(*l));
			if (!l)
				return;
			img->layers = l;
		}
		img->layers[img->nlayers++] = strdup(s);
		s += strlen(s) + 1;
	}
	s++;
	size_t n = 0;
	while (s < end && *s && n < SBX_MAX_ENV - 1) {
		p->env[n++] = strdup(s);
		s += strlen(s) + 1;
	}
	p->env[n] = NULL;
	p->img = img; /* the old one, if any, stays: sandboxes made from it may point at it */
}

/* Creates a sandbox, from a snapshot when req names one. */
static int create(struct sbx_runtime *rt, const struct sbx_profile *p, const struct zy_req *req,
		  struct sbx *s)
{
	if (!req->snap[0])
		return sbx_create(rt, p, req->id, NULL, s);
	if (!p->img)
		return -EAGAIN;
	/* The chain of the snapshot opened last, kept for a second: a group of forks reads the
	 * store (and marks the snapshot used) once, not once per sandbox. */
	static char layers[64][PATH_MAX], last[SNAP_ID_MAX], last_image[80];
	static const char *ptrs[64];
	static unsigned n;
	static uint64_t last_at;
	char snap[SNAP_ID_MAX];
	snprintf(snap, sizeof(snap), "%.*s", (int)sizeof(req->snap) - 1, req->snap);
	uint64_t now = zy_now_ns();
	if (strcmp(snap, last) != 0 || now - last_at > 1000000000ull) {
		struct snap_meta top;
		last[0] = 0;
		int rc = snap_chain(rt->snapshot_dir, snap, layers, 64, &n, &top);
		if (rc)
			return rc;
		snprintf(last, sizeof(last), "%s", snap);
		snprintf(last_image, sizeof(last_image), "%s", top.image);
		last_at = now;
	} else {
		/* Still there? A collector elsewhere may have removed it meanwhile. */
		if (access(layers[0], F_OK) != 0) {
			last[0] = 0;
			return -ENOENT;
		}
	}
	if (strcmp(last_image, p->img->id) != 0)
		return -EXDEV; /* taken on another image */
	for (unsigned i = 0; i < n; i++)
		ptrs[i] = layers[i];
	struct sbx_from from = { ptrs, n };
	return sbx_create(rt, p, req->id, &from, s);
}

static void zygote_main(int sock, struct sbx_runtime *rt, const struct sbx_profile *profiles,
			size_t nprofiles)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "rollout-zygote");
	hide_cmdline();
	/* A service manager signals the whole process group; the zygote leaves when the pool
	 * tells it to (after the pool drained) or dies with it. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	bool idmaps_due = true;
	for (;;) {
		struct pollfd pf = { .fd = sock, .events = POLLIN };
		/* Idle time goes into the stock of network namespaces. */
		int n = poll(&pf, 1, rt->nnetns < ZY_NETNS_TARGET || idmaps_due ? 0 : 1000);
		if (n == 0 && rt->nnetns < ZY_NETNS_TARGET)
			sbx_netns_fill(rt, rt->nnetns + 1);
		/* And the idmaps of the next image sandboxes (a user namespace each). */
		idmaps_due = false;
		for (size_t i = 0; n == 0 && i < nprofiles && !idmaps_due; i++)
			idmaps_due = sbx_idmap_fill(rt, &profiles[i], ZY_IDMAP_AHEAD);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (n <= 0)
			continue;
		static char buf[ZY_MAX_PACKET];
		ssize_t got = recv(sock, buf, sizeof(buf), 0);
		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			break; /* the pool is gone or closed us: clean up and leave */
		struct zy_req req;
		if (got < (ssize_t)sizeof(req))
			continue;
		idmaps_due = true; /* a creation moves the uid slots on; an image adds a profile */
		memcpy(&req, buf, sizeof(req));
		if (req.op == ZY_IMAGE) {
			if (req.profile < nprofiles)
				install_image((struct sbx_profile *)&profiles[req.profile], buf + sizeof(req),
					      (size_t)got - sizeof(req));
			continue;
		}
		if (got != sizeof(req))
			continue;
		struct zy_resp resp = { .op = req.op, .id = req.id };
		if (req.op == ZY_CREATE) {
			struct zslot *z = req.profile < nprofiles ? alloc_slot() : NULL;
			if (!z) {
				resp.status = req.profile < nprofiles ? -ENOMEM : -EINVAL;
			} else {
				uint64_t t0 = zy_now_ns();
				resp.status = create(rt, &profiles[req.profile], &req, &z->s);
				resp.create_ns = zy_now_ns() - t0;
				if (resp.status == 0) {
					z->used = true;
					resp.pid = z->s.pid;
					resp.uid = z->s.uid;
					resp.oom_before = z->s.oom_before;
					int fds[2] = { z->s.fd, z->s.pidfd };
					if (shm_send_fds(sock, &resp, sizeof(resp), fds, 2) == 0) {
						/* The pool talks to the sandbox; one descriptor per sandbox
						 * here (the pidfd, to kill it) keeps 10k sandboxes within
						 * common fd limits. */
						close(z->s.fd);
						z->s.fd = -1;
						continue;
					}
					sbx_destroy(rt, &z->s);
					z->used = false;
					continue;
				}
			}
			shm_send_fds(sock, &resp, sizeof(resp), NULL, 0);
		} else if (req.op == ZY_DESTROY) {
			struct zslot *z = find(req.id);
			if (z) {
				sbx_destroy(rt, &z->s);
				z->used = false;
			}
			/* No answer: the pool forgot the sandbox when it asked. */
		} else if (req.op == ZY_EXIT) {
			break;
		}
	}
	destroy_all(rt);
	_exit(0);
}

uint64_t zy_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int zy_start(struct zygote *z, struct sbx_runtime *rt, const struct sbx_profile *profiles, size_t nprofiles)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int rc = -errno;
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (pid == 0) {
		close(sv[0]);
		zygote_main(sv[1], rt, profiles, nprofiles);
	}
	close(sv[1]);
	z->pid = pid;
	z->fd = sv[0];
	z->q = NULL;
	z->qhead = z->qlen = z->qcap = 0;
	/* The pool never waits on the zygote: it may itself be busy sending answers. */
	int fl = fcntl(z->fd, F_GETFL);
	if (fl < 0 || fcntl(z->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int rc = -errno;
		zy_stop(z);
		return rc;
	}
	return 0;
}

int zy_flush(struct zygote *z)
{
	while (z->qlen) {
		ssize_t n = send(z->fd, &z->q[z->qhead], sizeof(struct zy_req), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		}
		if (n != sizeof(struct zy_req))
			return -EIO; /* SOCK_SEQPACKET: whole records or nothing */
		z->qhead = (z->qhead + 1) % z->qcap;
		z->qlen--;
	}
	z->qhead = 0;
	return 0;
}

int zy_image(struct zygote *z, uint32_t profile, const struct sbx_image *img, const char *const *env)
{
	static char buf[ZY_MAX_PACKET];
	struct zy_req req = { .op = ZY_IMAGE, .profile = profile };
	memcpy(buf, &req, sizeof(req));
	size_t n = sizeof(req);
	char num[2][16];
	snprintf(num[0], sizeof(num[0]), "%u", img->uid);
	snprintf(num[1], sizeof(num[1]), "%u", img->gid);
	const char *head[4] = { img->id, num[0], num[1], img->cwd ? img->cwd : "/tmp" };
#define PUT(str)                              \
	do {                                  \
		size_t l_ = strlen(str) + 1;  \
		if (n + l_ + 1 > sizeof(buf)) \
			return -E2BIG;        \
		memcpy(buf + n, str, l_);     \
		n += l_;                      \
	} while (0)
	for (int i = 0; i < 4; i++)
		PUT(head[i]);
	for (unsigned i = 0; i < img->nlayers; i++)
		PUT(img->layers[i]);
	PUT("");
	for (size_t i = 0; env && env[i]; i++)
		PUT(env[i]);
#undef PUT
	/* After the requests already queued: they may be for other profiles. */
	for (int tries = 0; tries < 100; tries++) {
		int rc = zy_flush(z);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			ssize_t w = send(z->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w == (ssize_t)n)
				return 0;
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return -errno;
		}
		struct pollfd pf = { .fd = z->fd, .events = POLLOUT };
		poll(&pf, 1, 10);
	}
	return -ETIMEDOUT;
}

static int enqueue(struct zygote *z, const struct zy_req *r);

int zy_request(struct zygote *z, uint32_t op, uint32_t profile, uint64_t id)
{
	struct zy_req r = { .op = op, .profile = profile, .id = id };
	return enqueue(z, &r);
}

int zy_request_from(struct zygote *z, uint32_t profile, uint64_t id, const char *snap)
{
	struct zy_req r = { .op = ZY_CREATE, .profile = profile, .id = id };
	if (snap)
		snprintf(r.snap, sizeof(r.snap), "%s", snap);
	return enqueue(z, &r);
}

static int enqueue(struct zygote *z, const struct zy_req *r)
{
	if (z->qlen == z->qcap) {
		size_t cap = z->qcap ? z->qcap * 2 : 64;
		struct zy_req *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < z->qlen; i++)
			q[i] = z->q[(z->qhead + i) % z->qcap];
		free(z->q);
		z->q = q;
		z->qcap = cap;
		z->qhead = 0;
	}
	z->q[(z->qhead + z->qlen) % z->qcap] = *r;
	z->qlen++;
	return zy_flush(z);
}

int zy_receive(struct zygote *z, struct zy_resp *resp, int *sock_fd, int *pidfd)
{
	int fds[2] = { -1, -1 };
	unsigned nfds = 0;
	int n = shm_recv_fds(z->fd, resp, sizeof(*resp), fds, 2, &nfds);
	if (n < 0)
		return n;
	if (n == 0)
		return -EPIPE;
	if (n != sizeof(*resp)) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return -EBADMSG;
	}
	if (resp->status == 0 && nfds != 2) {
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		resp->status = -EBADMSG;
	}
	*sock_fd = fds[0];
	*pidfd = fds[1];
	return 0;
}

void zy_stop(struct zygote *z)
{
	free(z->q);
	z->q = NULL;
	z->qhead = z->qlen = z->qcap = 0;
	if (z->fd < 0)
		return;
	/* End of file is the zygote's signal to destroy everything and exit; a request would
	 * have to wait behind answers it may be blocked sending. */
	close(z->fd);
	z->fd = -1;
	while (waitpid(z->pid, NULL, 0) < 0 && errno == EINTR)
		;
}
