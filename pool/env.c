/* Environments in rollout-pool (see env.h). */
#include "env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "action.h"
#include "boxes.h"
#include "completion.h"
#include "log.h"
#include "metrics.h"
#include "peer.h"
#include "proto.h"
#include "rollout/error.h"
#include "util.h"
#include "zygote.h"

#define ENV_GC_EVERY_MS 10000

enum { MSG_IMAGE, MSG_SNAP, MSG_GC };

/* What a thread hands back to the loop (through the pipe, by pointer). */
struct env_msg {
	int kind;
};

struct resolve_msg {
	struct env_msg h;
	struct pool *p; /* only its config is read by the thread */
	int profile;
	int rc;
	char err[512];
	struct img img;
};

struct snap_msg {
	struct env_msg h;
	struct env *e;
	struct job *job; /* the loop's: only compared there */
	const struct cg_sys *cg;
	const char *dir;
	const char *staging; /* a tmpfs to capture into while frozen, or NULL */
	uint64_t box_id, seq;
	pid_t pid;
	char cgname[32];
	struct snap_owner own;
	char parent[SNAP_ID_MAX];
	char image[80];
	char profile[72];
	uint32_t max_depth;
	int rc;
	char err[256];
	struct snap_meta meta;
	uint64_t frozen_us, total_ns;
};

struct gc_msg {
	struct env_msg h;
	struct env *e;
	const char *dir;
	uint64_t ttl_s, budget;
	char (*in_use)[SNAP_ID_MAX];
	size_t nin_use;
	struct snap_stats st;
};

struct env {
	char staging[PATH_MAX]; /* "" when the store itself is fast (tmpfs) or none could be made */
	int pipe[2];
	pthread_t *threads; /* resolvers, joined at stop */
	size_t nthreads;
	char snapdir[PATH_MAX];
	uint64_t seq;
	uint64_t gc_at;
	bool gc_running;
	unsigned snapping; /* snapshot workers running */
	uint64_t evicted;
};

static void post(struct env *e, struct env_msg *m)
{
	/* A pointer is 8 bytes: pipe writes that small are atomic, and the pipe holds 8 KiB of
	 * them; a full pipe means the loop is gone, and blocking is then right. */
	ssize_t n;
	do
		n = write(e->pipe[1], &m, sizeof(m));
	while (n < 0 && errno == EINTR);
}

static int mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -errno : 0;
}

/* ---- images ---- */

struct progress {
	struct pool *p;
	int profile;
	uint64_t base; /* bytes of the layers before this one */
	uint64_t last_index;
};

static void on_progress(void *arg, const char *spec, const char *digest, uint64_t index, uint64_t nlayers,
			uint64_t done, uint64_t total)
{
	struct progress *g = arg;
	struct profile_state *ps = &g->p->prof[g->profile];
	if (index != g->last_index) {
		g->base += __atomic_load_n(&ps->img_total, __ATOMIC_RELAXED) - g->base;
		g->last_index = index;
	}
	__atomic_store_n(&ps->img_done, g->base + done, __ATOMIC_RELAXED);
	__atomic_store_n(&ps->img_total, g->base + total, __ATOMIC_RELAXED);
	if (done == 0) {
		char esc[300];
		RLOG(RLOG_INFO, "unpacking image layer", "image=\"%s\" layer=%llu/%llu digest=%s bytes=%llu",
		     rlog_esc(esc, sizeof(esc), spec), (unsigned long long)index + 1,
		     (unsigned long long)nlayers, digest ? digest : "-", (unsigned long long)total);
	}
}

static void *resolve_thread(void *arg)
{
	struct resolve_msg *m = arg;
	const struct pool_profile_cfg *c = &m->p->cfg->profiles[m->profile];
	struct progress g = { .p = m->p, .profile = m->profile, .last_index = UINT64_MAX };
	m->rc = img_resolve(m->p->cfg->state_dir, c->image, on_progress, &g, &m->img, m->err, sizeof(m->err));
	if (!m->rc && c->user)
		m->rc = img_set_user(&m->img, c->user, m->err, sizeof(m->err));
	if (!m->rc && (m->img.uid >= 65536 || m->img.gid >= 65536)) {
		snprintf(m->err, sizeof(m->err), "image %s: user %u:%u is above 65535", c->image, m->img.uid,
			 m->img.gid);
		m->rc = -ERANGE;
	}
	post(m->p->env, &m->h);
	return NULL;
}

/* The environment an image sandbox gets: the image's Env, then the profile's entries (a
 * NAME the profile sets replaces the image's), HOME and PATH when neither has them. */
static size_t merge_env(const struct img *img, const struct pool_profile_cfg *c, const char **out, size_t cap)
{
	size_t n = 0;
	for (unsigned i = 0; i < img->nenv && n + 1 < cap; i++) {
		const char *eq = strchr(img->env[i], '=');
		size_t klen = eq ? (size_t)(eq - img->env[i]) : strlen(img->env[i]);
		bool overridden = false;
		for (unsigned k = 0; k < c->env_count && !overridden; k++)
			overridden = !strncmp(c->env[k], img->env[i], klen) && c->env[k][klen] == '=';
		if (!overridden)
			out[n++] = img->env[i];
	}
	for (unsigned k = 0; k < c->env_count && n + 1 < cap; k++)
		out[n++] = c->env[k];
	static const char *const defaults[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
		"LANG=C.UTF-8"
	};
	for (size_t d = 0; d < 3 && n + 1 < cap; d++) {
		size_t klen = (size_t)(strchr(defaults[d], '=') - defaults[d]);
		bool have = false;
		for (size_t i = 0; i < n && !have; i++)
			have = !strncmp(out[i], defaults[d], klen + 1);
		if (!have)
			out[n++] = defaults[d];
	}
	out[n] = NULL;
	return n;
}

static void image_done(struct pool *p, struct resolve_msg *m)
{
	struct profile_state *ps = &p->prof[m->profile];
	const struct pool_profile_cfg *c = &p->cfg->profiles[m->profile];
	char esc[300];
	if (m->rc) {
		ps->img_state = ENV_IMG_FAILED;
		/* Opens that waited for it get the reason. */
		for (struct job *j = ps->waiting_head, *n; j; j = n) {
			n = j->next;
			proto_job_done(p, j, rw_Status_UNKNOWN_PROFILE, false, m->err);
		}
		ps->waiting_head = ps->waiting_tail = NULL;
		ps->waiting = 0;
		for (struct job *j = ps->snapq_head, *n; j; j = n) {
			n = j->next;
			proto_job_done(p, j, rw_Status_UNKNOWN_PROFILE, false, m->err);
		}
		ps->snapq_head = ps->snapq_tail = NULL;
		p->capacity_dirty = true;
		snprintf(ps->img_err, sizeof(ps->img_err), "%s",
			 m->err[0] ? m->err : rollout_strerror(m->rc));
		RLOG(RLOG_ERROR, "image refused: the profile serves nothing", "profile=\"%s\" why=\"%s\"",
		     rlog_esc(esc, sizeof(esc), c->name),
		     rlog_esc(ps->img_err, sizeof(ps->img_err), ps->img_err));
		img_free(&m->img);
		free(m);
		return;
	}
	ps->img = malloc(sizeof(*ps->img));
	if (!ps->img) {
		img_free(&m->img);
		free(m);
		ps->img_state = ENV_IMG_FAILED;
		snprintf(ps->img_err, sizeof(ps->img_err), "out of memory");
		return;
	}
	*ps->img = m->img;
	int profile = m->profile;
	free(m);
	struct img *img = ps->img;
	struct sbx_image *si = &ps->simg;
	snprintf(si->id, sizeof(si->id), "%s", img->id);
	si->layers = img->layers;
	si->nlayers = img->nlayers;
	si->uid = img->uid;
	si->gid = img->gid;
	si->cwd = c->workdir ? c->workdir : img->workdir && img->workdir[0] ? img->workdir : "/tmp";
	const char *env[SBX_MAX_ENV];
	merge_env(img, c, env, SBX_MAX_ENV);
	int rc = zy_image(&p->zy, (uint32_t)profile, si, env);
	if (rc) {
		pool__fail(p, rc, "cannot give the zygote an image");
		return;
	}
	ps->sp.img = si;
	ps->img_state = ENV_IMG_READY;
	RLOG(RLOG_INFO, "image ready", "profile=\"%s\" id=%s layers=%u bytes=%llu skipped_entries=%llu",
	     rlog_esc(esc, sizeof(esc), c->name), img->id, img->nlayers, (unsigned long long)img->bytes,
	     (unsigned long long)img->skipped);
	p->capacity_dirty = true;
	box_refill(p, profile);
	/* Opens from a snapshot that waited for the image. */
	for (struct job *j = ps->snapq_head, *n; j; j = n) {
		n = j->next;
		j->next = NULL;
		int brc = box_create_for(p, profile, j);
		if (brc)
			proto_job_done(
			    p, j, brc == -EBUSY ? rw_Status_NO_CAPACITY : rw_Status_INTERNAL, brc != -EBUSY,
			    brc == -EBUSY ? "profile is at its sandbox limit" : "cannot create a sandbox");
	}
	ps->snapq_head = ps->snapq_tail = NULL;
}

bool env_ready(const struct pool *p, int profile, const char **why)
{
	const struct profile_state *ps = &p->prof[profile];
	switch (ps->img_state) {
	case ENV_IMG_RESOLVING:
		*why = "the profile's image is still being unpacked";
		return false;
	case ENV_IMG_FAILED:
		*why = ps->img_err;
		return false;
	default:
		return true;
	}
}

/* ---- snapshots ---- */

static uint64_t now_us(void)
{
	return rollout__now_ns() / 1000;
}

static void *snap_thread(void *arg)
{
	struct snap_msg *m = arg;
	uint64_t t0 = rollout__now_ns();
	int rc = m->cg ? cg_freeze(m->cg, m->cgname, true) : 0;
	uint64_t frozen = now_us();
	if (rc) {
		snprintf(m->err, sizeof(m->err), "cannot freeze the sandbox: %s", strerror(-rc));
	} else {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)m->pid, SBX_UPPER_FD);
		int up = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up < 0) {
			rc = -errno;
			snprintf(m->err, sizeof(m->err), "cannot reach the sandbox's root: %s",
				 strerror(errno));
		} else {
			rc = snap_capture(m->dir, m->staging ? m->staging : m->dir, up, &m->own, m->parent,
					  m->image, m->profile, m->max_depth, &m->meta, m->err,
					  sizeof(m->err));
			close(up);
		}
	}
	if (m->cg)
		cg_freeze(m->cg, m->cgname, false);
	m->frozen_us = now_us() - frozen;
	/* Captured in memory while frozen; written to the store with the sandbox running. */
	if (!rc && m->staging)
		rc = snap_publish(m->dir, m->staging, m->meta.id, m->err, sizeof(m->err));
	m->total_ns = rollout__now_ns() - t0;
	m->rc = rc;
	post(m->e, &m->h);
	return NULL;
}

static int spawn_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -rc;
}

void env_snapshot(struct pool *p, struct box *b, struct job *j)
{
	struct env *e = p->env;
	struct profile_state *ps = &p->prof[b->profile];
	struct snap_msg *m = calloc(1, sizeof(*m));
	if (!m || !e || !ps->sp.img) {
		free(m);
		proto_job_done(p, j, rw_Status_INTERNAL, true, "cannot take a snapshot now");
		return;
	}
	m->h.kind = MSG_SNAP;
	m->e = e;
	m->job = j;
	m->cg = p->rt.cgroups ? &p->rt.cg : NULL;
	m->dir = e->snapdir;
	m->staging = e->staging[0] ? e->staging : NULL;
	m->box_id = b->s.id;
	m->seq = ++e->seq;
	m->pid = b->s.pid;
	snprintf(m->cgname, sizeof(m->cgname), "%s", b->s.cgname);
	m->own = (struct snap_owner){ .from = b->s.uid, .uid = ps->simg.uid, .gid = ps->simg.gid };
	snprintf(m->parent, sizeof(m->parent), "%s", b->from);
	snprintf(m->image, sizeof(m->image), "%s", ps->simg.id);
	snprintf(m->profile, sizeof(m->profile), "%s", ps->sp.name);
	m->max_depth = p->cfg->snapshot_max_depth;
	/* The box is busy until the answer: nothing else runs in it meanwhile. */
	b->cur = j;
	b->snap_seq = m->seq;
	j->started = rollout__now_ns();
	p->inflight++;
	b->deadline = 0;
	int rc = spawn_detached(snap_thread, m);
	if (rc) {
		b->cur = NULL;
		b->snap_seq = 0;
		p->inflight--;
		free(m);
		proto_job_done(p, j, rw_Status_INTERNAL, true, "cannot start a snapshot thread");
		act_dispatch_next(p, b);
		return;
	}
	e->snapping++;
}

bool env_checkpoint_due(struct pool *p, struct box *b, struct job *j, const uint8_t *msg, size_t len)
{
	if (!b->checkpoint_every || (j->kind != rw_Action_Exec && j->kind != rw_Action_PutFile) ||
	    ++b->steps % b->checkpoint_every != 0)
		return false;
	b->held = malloc(len);
	if (!b->held)
		return false;
	memcpy(b->held, msg, len);
	b->held_len = len;
	j->checkpoint = true;
	env_snapshot(p, b, j);
	if (b->cur != j) {
		/* It could not start: the step's answer goes as it is. */
		free(b->held);
		b->held = NULL;
		return false;
	}
	return true;
}

static void snap_done(struct pool *p, struct snap_msg *m)
{
	struct env *e = p->env;
	e->snapping--;
	struct box *b = box_find(p, m->box_id);
	if (!b || b->snap_seq != m->seq || b->cur != m->job) {
		/* The sandbox went meanwhile (its jobs were answered then); what was captured,
		 * if anything, is left to the collector. */
		free(m);
		return;
	}
	struct job *j = m->job;
	b->cur = NULL;
	b->snap_seq = 0;
	/* The store grew: the collector looks at it within a second (not at every snapshot: a
	 * pass reads every snapshot's meta). */
	uint64_t soon = rollout__now_ns() + ROLLOUT_MS(1000);
	if (e->gc_at > soon)
		e->gc_at = soon;
	p->inflight--;
	pool_metrics_snapshot(p->m, m->rc == 0, m->total_ns, m->frozen_us, m->meta.bytes);
	char esc[300];
	if (m->rc)
		RLOG(RLOG_WARN, "snapshot failed", "sandbox=%llu why=\"%s\"", (unsigned long long)b->s.id,
		     rlog_esc(esc, sizeof(esc), m->err));
	if (m->rc == 0 && j->checkpoint) {
		snprintf(b->checkpoint, sizeof(b->checkpoint), "%s", m->meta.id);
		b->checkpoint_rid = j->request_id;
	}
	if (b->held) {
		/* A step's checkpoint: the step's own answer, with the checkpoint when it was
		 * taken (a failed checkpoint does not fail the step: the last good one stands). */
		size_t n = m->rc == 0 ? act_rebuild(p, b->held, -1, NULL, m->meta.id, j->request_id) : 0;
		if (n)
			peer_answer(p, j->peer, j->dispatch, p->build, n);
		else
			peer_answer(p, j->peer, j->dispatch, b->held, b->held_len);
		free(b->held);
		b->held = NULL;
		proto_job_free(p, j);
	} else if (m->rc) {
		proto_job_done(p, j, rw_Status_INTERNAL, true, m->err);
	} else {
		struct rw_completion c = { .dispatch_id = j->dispatch,
					   .request_id = j->request_id,
					   .status = rw_Status_OK,
					   .result_type = rw_Result_Snapshotted,
					   .snapshot = m->meta.id,
					   .snapshot_bytes = m->meta.bytes,
					   .snapshot_files = m->meta.files,
					   .frozen_us = m->frozen_us,
					   .checkpoint = j->checkpoint ? m->meta.id : NULL,
					   .checkpoint_request_id = j->request_id };
		proto_send(p, j->peer, &c);
		proto_job_free(p, j);
	}
	free(m);
	act_dispatch_next(p, b);
}

/* ---- the collector ---- */

static bool gc_in_use(void *arg, const char *id)
{
	const struct gc_msg *m = arg;
	for (size_t i = 0; i < m->nin_use; i++)
		if (!strcmp(m->in_use[i], id))
			return true;
	return false;
}

static void *gc_thread(void *arg)
{
	struct gc_msg *m = arg;
	snap_gc(m->dir, m->ttl_s, m->budget, gc_in_use, m, &m->st);
	post(m->e, &m->h);
	return NULL;
}

struct in_use {
	char (*ids)[SNAP_ID_MAX];
	size_t n, cap;
};

static void collect_in_use(struct pool *p, struct box *b, void *arg)
{
	(void)p;
	struct in_use *u = arg;
	for (int k = 0; k < 2; k++) {
		const char *id = k ? b->checkpoint : b->from;
		if (!id[0])
			continue;
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 64;
			char(*ids)[SNAP_ID_MAX] = realloc(u->ids, cap * sizeof(*ids));
			if (!ids)
				return;
			u->ids = ids;
			u->cap = cap;
		}
		snprintf(u->ids[u->n++], SNAP_ID_MAX, "%s", id);
	}
}

void env_tick(struct pool *p, uint64_t now)
{
	struct env *e = p->env;
	if (!e || e->gc_running || now < e->gc_at)
		return;
	e->gc_at = now + ROLLOUT_MS(ENV_GC_EVERY_MS);
	struct gc_msg *m = calloc(1, sizeof(*m));
	if (!m)
		return;
	/* Snapshots sandboxes stand on (opened from, or their checkpoint) stay. */
	struct in_use u = { 0 };
	box_each(p, collect_in_use, &u);
	*m = (struct gc_msg){ .h.kind = MSG_GC,
			      .e = e,
			      .dir = e->snapdir,
			      .ttl_s = p->cfg->snapshot_ttl_s,
			      .budget = (uint64_t)p->cfg->snapshot_budget_mb << 20,
			      .in_use = u.ids,
			      .nin_use = u.n };
	if (spawn_detached(gc_thread, m)) {
		free(u.ids);
		free(m);
		return;
	}
	e->gc_running = true;
}

static void gc_done(struct pool *p, struct gc_msg *m)
{
	struct env *e = p->env;
	e->gc_running = false;
	if (m->st.evicted)
		RLOG(RLOG_INFO, "snapshots removed", "count=%llu left=%llu bytes_left=%llu",
		     (unsigned long long)m->st.evicted, (unsigned long long)m->st.count,
		     (unsigned long long)m->st.bytes);
	e->evicted += m->st.evicted;
	pool_metrics_store(p->m, m->st.count, m->st.bytes, e->evicted);
	free(m->in_use);
	free(m);
}

/* ---- the loop's side ---- */

static void on_pipe(void *arg, uint32_t events)
{
	struct pool *p = arg;
	(void)events;
	struct env_msg *msgs[64];
	ssize_t n = read(p->env->pipe[0], msgs, sizeof(msgs));
	for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
		switch (msgs[i]->kind) {
		case MSG_IMAGE:
			image_done(p, (struct resolve_msg *)msgs[i]);
			break;
		case MSG_SNAP:
			snap_done(p, (struct snap_msg *)msgs[i]);
			break;
		case MSG_GC:
			gc_done(p, (struct gc_msg *)msgs[i]);
			break;
		}
	}
}

int env_start(struct pool *p, char *err, size_t errsz)
{
	const struct pool_cfg *cfg = p->cfg;
	bool images = false;
	for (size_t i = 0; i < p->nprof; i++)
		images |= cfg->profiles[i].image != NULL;
	if (!images)
		return 0;
	struct env *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	p->env = e;
	e->pipe[0] = e->pipe[1] = -1;
	int rc;
	snprintf(e->snapdir, sizeof(e->snapdir), "%s", p->rt.snapshot_dir);
	if ((rc = mkdirs(cfg->state_dir, 0700))) {
		snprintf(err, errsz, "state_dir %s: %s", cfg->state_dir, rollout_strerror(rc));
		return rc;
	}
	if ((rc = mkdirs(e->snapdir, 0700))) {
		snprintf(err, errsz, "snapshot_dir %s: %s", e->snapdir, rollout_strerror(rc));
		return rc;
	}
	/* A store on a disk is slow to create files in: snapshots are captured into a tmpfs
	 * (the sandbox frozen only for that) and then copied to the store. */
	struct statfs sf;
	if (statfs(e->snapdir, &sf) == 0 && sf.f_type != TMPFS_MAGIC && p->rt.own_mounts) {
		snprintf(e->staging, sizeof(e->staging), "%s/staging", cfg->state_dir);
		if (mkdirs(e->staging, 0700) != 0 ||
		    mount("tmpfs", e->staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") < 0) {
			RLOG(RLOG_WARN, "snapshots are captured into the store directly", "why=\"%s\"",
			     strerror(errno));
			e->staging[0] = 0;
		}
	}
	if (pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (rc = loop_add(p->loop, e->pipe[0], EPOLLIN, on_pipe, p))) {
		rc = -errno;
		snprintf(err, errsz, "environments: %s", rollout_strerror(rc));
		return rc;
	}
	/* The worker's answers must never be lost to a full pipe: its write blocks instead. */
	fcntl(e->pipe[1], F_SETFL, 0);
	e->threads = calloc(p->nprof, sizeof(*e->threads));
	if (!e->threads)
		return -ENOMEM;
	for (size_t i = 0; i < p->nprof; i++) {
		if (!cfg->profiles[i].image)
			continue;
		struct resolve_msg *m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		m->h.kind = MSG_IMAGE;
		m->p = p;
		m->profile = (int)i;
		p->prof[i].img_state = ENV_IMG_RESOLVING;
		if ((rc = pthread_create(&e->threads[e->nthreads], NULL, resolve_thread, m))) {
			free(m);
			snprintf(err, errsz, "cannot start an image thread: %s", strerror(rc));
			return -rc;
		}
		e->nthreads++;
	}
	return 0;
}

void env_stop(struct pool *p)
{
	struct env *e = p->env;
	if (!e)
		return;
	for (size_t i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	/* Snapshot workers and the collector end on their own; wait for their answers so none
	 * writes to a closed pipe. */
	for (int tries = 0; (e->snapping || e->gc_running) && tries < 3000; tries++) {
		struct env_msg *m;
		ssize_t n = read(e->pipe[0], &m, sizeof(m));
		if (n == sizeof(m)) {
			if (m->kind == MSG_SNAP) {
				e->snapping--;
				free(m);
			} else if (m->kind == MSG_GC) {
				e->gc_running = false;
				free(((struct gc_msg *)m)->in_use);
				free(m);
			} else {
				img_free(&((struct resolve_msg *)m)->img);
				free(m);
			}
		} else {
			usleep(1000);
		}
	}
	/* Resolutions that finished after the loop stopped. */
	for (struct env_msg *m; read(e->pipe[0], &m, sizeof(m)) == sizeof(m);) {
		if (m->kind == MSG_IMAGE)
			img_free(&((struct resolve_msg *)m)->img);
		free(m);
	}
	for (size_t i = 0; i < p->nprof; i++)
		if (p->prof[i].img) {
			img_free(p->prof[i].img);
			free(p->prof[i].img);
		}
	if (e->staging[0])
		umount2(e->staging, MNT_DETACH);
	if (e->pipe[0] >= 0)
		close(e->pipe[0]);
	if (e->pipe[1] >= 0)
		close(e->pipe[1]);
	free(e->threads);
	free(e);
	p->env = NULL;
}
