/* The attach server (see attach.h). */
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "attach_proto.h"
#include "log.h"
#include "rollout/error.h"
#include "trainer.h"
#include "util.h"

#define ATTACH_DEADLINE_MS 1000
#define ATTACH_MAX_PENDING 256

struct pending {
	struct attach *a;
	int fd;
	uint64_t deadline;
	struct pending *next;
};

struct attach {
	const struct rd_cfg *cfg;
	struct attach_ops ops;
	uint64_t epoch;
	int listen_fd;
	bool owns_path;
	dev_t dev;
	ino_t ino;
	struct loop *loop;
	struct pending *pending;
	unsigned npending;
};

static void reply(int fd, int status, const char *msg)
{
	struct rollout_attach_resp r = { .magic = ROLLOUT_ATTACH_MAGIC,
					 .version = ROLLOUT_ATTACH_VERSION,
					 .type = ROLLOUT_ATTACH_RESP,
					 .status = status,
					 .memory_node = -1 };
	snprintf(r.message, sizeof(r.message), "%s", msg);
	send(fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Builds the trainer for a valid request and hands it to its shard; closes fd on failure. */
static void serve(struct attach *a, int fd, const struct rollout_attach_req *req)
{
	int pid;
	unsigned uid, gid;
	if (shm_peer_cred(fd, &pid, &uid, &gid)) {
		a->ops.refused(a->ops.arg);
		close(fd);
		return;
	}
	if (a->cfg->trainer_uids_count) {
		bool ok = false;
		for (unsigned i = 0; i < a->cfg->trainer_uids_count && !ok; i++)
			ok = a->cfg->trainer_uids[i] == uid;
		if (!ok) {
			char why[64];
			snprintf(why, sizeof(why), "uid %u may not attach (trainer_uids)", uid);
			RLOG(RLOG_WARN, "attach refused", "pid=%d uid=%u reason=\"not in trainer_uids\"", pid,
			     uid);
			a->ops.refused(a->ops.arg);
			reply(fd, -EPERM, why);
			close(fd);
			return;
		}
	}
	struct trainer *t = calloc(1, sizeof(*t));
	if (!t) {
		reply(fd, -ENOMEM, "out of memory");
		close(fd);
		return;
	}
	t->sock = fd;
	t->sq_wake = t->cq_wake = -1;
	t->pid = pid;
	t->uid = uid;
	memcpy(t->name, req->name, sizeof(t->name) - 1);
	for (char *c = t->name; *c; c++)
		if (*c == '"' || *c == '\\' || *c < 32 || *c == 0x7f)
			*c = '_';
	t->rc.name = t->name;
	t->max_transfer = a->cfg->max_transfer_mb << 20;
	uint32_t n = a->ops.nshards;
	uint32_t shard = req->gpu >= 0 ? (uint32_t)req->gpu % n : (uint32_t)pid % n;
	struct shm_seg_opts so = { .sq_size = a->cfg->ring_bytes,
				   .cq_size = a->cfg->ring_bytes,
				   .sq_max_record = a->cfg->max_record,
				   .cq_max_record = a->cfg->max_record,
				   .memory_node = a->ops.memory_node(a->ops.arg, shard),
				   .features = SHM_FEAT_EVENTFD_WAKE,
				   .epoch = a->epoch };
	int rc = shm_seg_create(&t->seg, &so);
	t->sq_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->cq_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rc || t->sq_wake < 0 || t->cq_wake < 0) {
		reply(fd, rc ? rc : -EMFILE, "cannot create the segment");
		goto fail;
	}
	struct shm_waitcfg rcfg, wcfg;
	shm_waitcfg_default(&rcfg);
	rcfg.spin_ns = 0;
	rcfg.wait_fd = t->sq_wake;
	rcfg.peer_fd = fd;
	shm_waitcfg_default(&wcfg);
	wcfg.wake_fd = t->cq_wake;
	wcfg.peer_fd = fd;
	if (shm_reader_init(&t->r, &t->seg, SHM_SQ, &rcfg) ||
	    shm_writer_init(&t->w, &t->seg, SHM_CQ, &wcfg)) {
		reply(fd, -ENOMEM, "cannot set up the rings");
		goto fail;
	}
	struct rollout_attach_resp r = { .magic = ROLLOUT_ATTACH_MAGIC,
					 .version = ROLLOUT_ATTACH_VERSION,
					 .type = ROLLOUT_ATTACH_RESP,
					 .shard = shard,
					 .epoch = a->epoch,
					 .segment_bytes = (uint32_t)t->seg.size,
					 .nfds = 3,
					 .memory_node = t->seg.hdr.memory_node };
	r.fd_roles[0] = ROLLOUT_FD_SEGMENT;
	r.fd_roles[1] = ROLLOUT_FD_SQ_WAKE;
	r.fd_roles[2] = ROLLOUT_FD_CQ_WAKE;
	int fds[3] = { t->seg.fd, t->sq_wake, t->cq_wake };
	if (shm_send_fds(fd, &r, sizeof(r), fds, 3))
		goto fail;
	RLOG(RLOG_INFO, "trainer attached", "shard=%u trainer=%s pid=%d uid=%u ring_bytes=%u", shard, t->name,
	     pid, uid, a->cfg->ring_bytes);
	a->ops.handoff(a->ops.arg, shard, t);
	return;
fail:
	a->ops.refused(a->ops.arg);
	trainer_destroy(t);
}

static void pending_drop(struct attach *a, struct pending *p, bool close_fd)
{
	for (struct pending **pp = &a->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	loop_del(a->loop, p->fd);
	if (close_fd)
		close(p->fd);
	a->npending--;
	free(p);
}

static void on_pending(void *arg, uint32_t events)
{
	struct pending *p = arg;
	struct attach *a = p->a;
	struct rollout_attach_req req;
	ssize_t n = recv(p->fd, &req, sizeof(req), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLERR)))
		return;
	int fd = p->fd;
	pending_drop(a, p, false);
	if (n != sizeof(req) || req.magic != ROLLOUT_ATTACH_MAGIC || req.type != ROLLOUT_ATTACH_REQ) {
		a->ops.refused(a->ops.arg);
		reply(fd, ROLLOUT_E_PROTOCOL, "bad attach request");
		close(fd);
		return;
	}
	if (req.version != ROLLOUT_ATTACH_VERSION) {
		a->ops.refused(a->ops.arg);
		reply(fd, ROLLOUT_E_ABI, "attach protocol version mismatch");
		close(fd);
		return;
	}
	serve(a, fd, &req);
}

static void on_listen(void *arg, uint32_t events)
{
	struct attach *a = arg;
	(void)events;
	for (;;) {
		int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return; /* EAGAIN, or a transient error such as EMFILE: try at the next event */
		struct pending *p = a->npending < ATTACH_MAX_PENDING ? calloc(1, sizeof(*p)) : NULL;
		if (!p) {
			a->ops.refused(a->ops.arg);
			reply(fd, -EBUSY, "too many attaches in progress");
			close(fd);
			continue;
		}
		p->a = a;
		p->fd = fd;
		p->deadline = rollout__now_ns() + ROLLOUT_MS(ATTACH_DEADLINE_MS);
		if (loop_add(a->loop, fd, EPOLLIN | EPOLLRDHUP, on_pending, p)) {
			close(fd);
			free(p);
			continue;
		}
		p->next = a->pending;
		a->pending = p;
		a->npending++;
	}
}

/* A peer that does not send its request within the deadline is not waited for. */
static void on_timer(void *arg, uint64_t now)
{
	struct attach *a = arg;
	for (struct pending *p = a->pending, *n; p; p = n) {
		n = p->next;
		if (now < p->deadline)
			continue;
		a->ops.refused(a->ops.arg);
		reply(p->fd, ROLLOUT_E_PROTOCOL, "no attach request within 1 s");
		pending_drop(a, p, true);
	}
}

int attach_open(struct attach **out, const struct rd_cfg *cfg, uint64_t epoch, const struct attach_ops *ops,
		char *err, size_t errsz)
{
	struct attach *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->ops = *ops;
	a->epoch = epoch;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc = 0;
	if (strlen(cfg->socket) >= sizeof(sa.sun_path)) {
		snprintf(err, errsz, "socket path %s is too long", cfg->socket);
		free(a);
		return -ENAMETOOLONG;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket);
	a->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (a->listen_fd < 0) {
		rc = -errno;
		snprintf(err, errsz, "socket: %s", strerror(errno));
		goto fail;
	}
	/* The socket's own directory (/run/rolloutd of the default) is made when missing; a
	 * service manager's RuntimeDirectory= makes it first, with its owner and mode. */
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", cfg->socket);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			snprintf(err, errsz, "cannot make the socket's directory %s: %s", dir,
				 strerror(errno));
			goto fail;
		}
	}
	struct stat st;
	if (lstat(cfg->socket, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errsz, "%s exists and is not a socket", cfg->socket);
			rc = -EEXIST;
			goto fail;
		}
		/* A live rolloutd answers: refuse, and leave its socket alone. A dead one's stale
		 * socket refuses the connection: replace it. */
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int c = probe >= 0 ? connect(probe, (struct sockaddr *)&sa, sizeof(sa)) : -1;
		int cerr = errno;
		if (probe >= 0)
			close(probe);
		if (c == 0 || (cerr != ECONNREFUSED && cerr != ENOENT)) {
			snprintf(err, errsz, "another rolloutd serves %s (or it cannot be probed: %s)",
				 cfg->socket, c == 0 ? "it answered" : strerror(cerr));
			rc = -EADDRINUSE;
			goto fail;
		}
		if (unlink(cfg->socket) < 0 && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errsz, "cannot remove the stale socket %s: %s", cfg->socket,
				 strerror(errno));
			goto fail;
		}
	}
	if (bind(a->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot bind %s: %s", cfg->socket, strerror(errno));
		goto fail;
	}
	/* From here the path is ours: remember which inode, so exit removes only this one. */
	a->owns_path = true;
	if (stat(cfg->socket, &st) == 0) {
		a->dev = st.st_dev;
		a->ino = st.st_ino;
	}
	if (listen(a->listen_fd, 128) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot listen on %s: %s", cfg->socket, strerror(errno));
		goto fail;
	}
	if (chmod(cfg->socket, 0660) < 0)
		RLOG(RLOG_WARN, "cannot set the socket's mode", "socket=%s err=\"%s\"", cfg->socket,
		     strerror(errno));
	*out = a;
	return 0;
fail:
	attach_close(a);
	return rc;
}

int attach_start(struct attach *a, struct loop *l)
{
	a->loop = l;
	int rc = loop_add(l, a->listen_fd, EPOLLIN, on_listen, a);
	return rc ? rc : loop_every(l, ROLLOUT_MS(100), on_timer, a);
}

void attach_close(struct attach *a)
{
	if (!a)
		return;
	while (a->pending)
		pending_drop(a, a->pending, true);
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	struct stat st;
	if (a->owns_path && stat(a->cfg->socket, &st) == 0 && st.st_dev == a->dev && st.st_ino == a->ino)
		unlink(a->cfg->socket);
	free(a);
}
