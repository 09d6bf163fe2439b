/* shm ring producer and consumer. The writer owns `tail`, the reader owns `head`; each keeps
 * its own copy of both and of the ring geometry, and checks every value it reads from the
 * segment against them before using it (the other process may be buggy or hostile). */
#include "ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "barrier.h"
#include "rollout/error.h"

#define WAIT_FUTEX    1u
#define WAIT_EVENTFD  2u
/* Longest single sleep: bounds how late a dead peer is noticed in futex mode. */
#define WAIT_SLICE_MS 50

static inline uint32_t rec_span(uint32_t len)
{
	return (SHM_REC_HDR_SIZE + len + SHM_REC_ALIGN - 1) & ~(SHM_REC_ALIGN - 1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void shm_waitcfg_default(struct shm_waitcfg *cfg)
{
	cfg->spin_ns = SHM_DEFAULT_SPIN_NS;
	cfg->wait_fd = -1;
	cfg->wake_fd = -1;
	cfg->peer_fd = -1;
}

static int geom_init(struct shm_ring_geom *g, const struct shm_seg *seg, enum shm_ring_id id)
{
	const struct shm_ring_desc *d = id == SHM_SQ ? &seg->hdr.sq : &seg->hdr.cq;
	if (id != SHM_SQ && id != SHM_CQ)
		return -EINVAL;
	g->data = (uint8_t *)seg->base + d->data_off;
	g->ctl = (struct shm_ring_ctl *)((uint8_t *)seg->base + d->ctl_off);
	g->size = d->size;
	g->mask = d->size - 1;
	g->max_record = d->max_record;
	return 0;
}

int shm_writer_init(struct shm_writer *w, const struct shm_seg *seg, enum shm_ring_id id,
		    const struct shm_waitcfg *cfg)
{
	memset(w, 0, sizeof(*w));
	int rc = geom_init(&w->g, seg, id);
	if (rc)
		return rc;
	if (cfg)
		w->w = *cfg;
	else
		shm_waitcfg_default(&w->w);
	w->seg = seg;
	/* A fresh segment starts at zero; attaching to a live ring resumes where it is. */
	w->tail = w->published = shm_load_acquire(&w->g.ctl->tail);
	w->head = shm_load_acquire(&w->g.ctl->head);
	if (w->tail - w->head > w->g.size || (w->tail & (SHM_REC_ALIGN - 1)))
		return ROLLOUT_E_CORRUPT;
	return 0;
}

int shm_reader_init(struct shm_reader *r, const struct shm_seg *seg, enum shm_ring_id id,
		    const struct shm_waitcfg *cfg)
{
	memset(r, 0, sizeof(*r));
	int rc = geom_init(&r->g, seg, id);
	if (rc)
		return rc;
	if (cfg)
		r->w = *cfg;
	else
		shm_waitcfg_default(&r->w);
	r->seg = seg;
	r->head = r->published = shm_load_acquire(&r->g.ctl->head);
	r->tail = r->head;
	if (r->head & (SHM_REC_ALIGN - 1))
		return ROLLOUT_E_CORRUPT;
	r->copy = malloc(r->g.max_record);
	if (!r->copy)
		return -ENOMEM;
	return 0;
}

void shm_reader_destroy(struct shm_reader *r)
{
	free(r->copy);
	r->copy = NULL;
}

static int refuse(struct shm_ring_stats *st, int *broken)
{
	st->refused++;
	*broken = ROLLOUT_E_CORRUPT;
	return ROLLOUT_E_CORRUPT;
}

static void wake(struct shm_wait_slot *slot, int wake_fd, struct shm_ring_stats *st)
{
	uint32_t mode = shm_xchg(&slot->waiting, 0u);
	if (!mode)
		return;
	__atomic_add_fetch(&slot->seq, 1u, __ATOMIC_RELEASE);
	__atomic_add_fetch(&slot->wakeups, 1u, __ATOMIC_RELAXED);
	st->wakeups++;
	if (mode == WAIT_EVENTFD && wake_fd >= 0) {
		uint64_t one = 1;
		ssize_t n = write(wake_fd, &one, sizeof(one));
		(void)n; /* EAGAIN: the counter is saturated, the sleeper wakes anyway */
	} else {
		syscall(SYS_futex, &slot->seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

int shm_peer_gone(int fd)
{
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 1;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL))
		return 1;
	/* A pidfd becomes readable when the process exits; a socket is readable when it has
	 * data, which is not a death notice. */
	return !S_ISSOCK(st.st_mode) && (p.revents & POLLIN);
}

/* Sleeps on `slot` until ready(arg) holds, the peer goes, or the deadline passes. The flag
 * is raised before the last readiness check so a waker that publishes after that check
 * sees the flag (both sides use seq_cst for that store->load pair). */
static int wait_on(struct shm_wait_slot *slot, const struct shm_waitcfg *cfg, const struct shm_seg *seg,
		   struct shm_ring_stats *st, int (*ready)(void *), void *arg, int timeout_ms)
{
	uint64_t start = now_ns();
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000ull;
	int rc;
	while ((rc = ready(arg)) == 0 && now_ns() - start < cfg->spin_ns)
		shm_cpu_relax();
	for (;;) {
		if (rc)
			return rc > 0 ? 0 : rc;
		if (seg && shm_seg_state(seg) == SHM_STATE_CLOSING)
			return ROLLOUT_E_SHUTDOWN;
		if (shm_peer_gone(cfg->peer_fd))
			return ROLLOUT_E_PEER_DEAD;
		uint64_t now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		int slice = left_ms < WAIT_SLICE_MS ? (int)left_ms : WAIT_SLICE_MS;

		uint32_t seq = shm_load_acquire(&slot->seq);
		uint32_t mode = cfg->wait_fd >= 0 ? WAIT_EVENTFD : WAIT_FUTEX;
		shm_store_seqcst(&slot->waiting, mode);
		rc = ready(arg);
		if (rc) {
			shm_store_relaxed(&slot->waiting, 0u);
			continue;
		}
		st->sleeps++;
		if (mode == WAIT_EVENTFD) {
			struct pollfd p[2] = { { .fd = cfg->wait_fd, .events = POLLIN },
					       { .fd = cfg->peer_fd, .events = POLLIN | POLLRDHUP } };
			int n = poll(p, cfg->peer_fd >= 0 ? 2 : 1, slice);
			if (n > 0 && (p[0].revents & POLLIN)) {
				uint64_t v;
				ssize_t got = read(cfg->wait_fd, &v, sizeof(v));
				(void)got;
			}
		} else {
			struct timespec ts = { .tv_sec = slice / 1000,
					       .tv_nsec = (long)(slice % 1000) * 1000000L };
			syscall(SYS_futex, &slot->seq, FUTEX_WAIT, seq, &ts, NULL, 0);
		}
		rc = ready(arg);
	}
}

/* ---- writer ---- */

/* Reads the consumer index and checks it: it never moves backwards and never passes what
 * was published. */
static int writer_sync_head(struct shm_writer *w)
{
	uint64_t h = shm_load_acquire(&w->g.ctl->head);
	if (h - w->head > w->g.size || w->published - h > w->g.size || (h & (SHM_REC_ALIGN - 1)))
		return refuse(&w->stats, &w->broken);
	w->head = h;
	return 0;
}

static uint32_t writer_need(const struct shm_writer *w, uint32_t len, uint32_t *pad)
{
	uint32_t span = rec_span(len);
	uint32_t off = (uint32_t)(w->tail & w->g.mask);
	*pad = off + span > w->g.size ? w->g.size - off : 0;
	return *pad + span;
}

void *shm_writer_reserve(struct shm_writer *w, uint32_t len, int *err)
{
	int rc = 0;
	uint32_t pad;
	if (w->broken) {
		rc = w->broken;
	} else if (w->res_len) {
		rc = -EBUSY;
	} else if (len == 0) {
		rc = -EINVAL;
	} else if (len > w->g.max_record) {
		rc = ROLLOUT_E_TOO_BIG;
	} else {
		uint32_t need = writer_need(w, len, &pad);
		if (w->tail + need - w->head > w->g.size) {
			rc = writer_sync_head(w);
			if (!rc && w->tail + need - w->head > w->g.size)
				rc = -EAGAIN;
		}
	}
	if (rc) {
		if (err)
			*err = rc;
		return NULL;
	}
	w->res_len = len;
	w->res_pad = pad;
	return w->g.data + ((w->tail + pad) & w->g.mask) + SHM_REC_HDR_SIZE;
}

int shm_writer_commit(struct shm_writer *w, uint32_t used)
{
	if (!w->res_len)
		return -EINVAL;
	if (used == 0 || used > w->res_len)
		return -EINVAL;
	if (w->res_pad) {
		struct shm_rec_hdr pad = { .len = w->res_pad, .type = SHM_REC_PAD };
		memcpy(w->g.data + (w->tail & w->g.mask), &pad, sizeof(pad));
		w->tail += w->res_pad;
	}
	struct shm_rec_hdr h = { .len = used, .type = SHM_REC_DATA };
	memcpy(w->g.data + (w->tail & w->g.mask), &h, sizeof(h));
	w->tail += rec_span(used);
	w->res_len = 0;
	w->res_pad = 0;
	w->stats.records++;
	w->stats.bytes += used;
	return 0;
}

void shm_writer_abort(struct shm_writer *w)
{
	w->res_len = 0;
	w->res_pad = 0;
}

int shm_writer_publish(struct shm_writer *w)
{
	uint64_t n = w->tail - w->published;
	if (!n || w->broken)
		return 0;
	shm_store_seqcst(&w->g.ctl->tail, w->tail);
	w->published = w->tail;
	if (shm_load_seqcst(&w->g.ctl->data_wait.waiting))
		wake(&w->g.ctl->data_wait, w->w.wake_fd, &w->stats);
	return (int)n;
}

int shm_writer_send(struct shm_writer *w, const void *data, uint32_t len)
{
	int rc;
	void *p = shm_writer_reserve(w, len, &rc);
	if (!p)
		return rc;
	memcpy(p, data, len);
	rc = shm_writer_commit(w, len);
	if (rc)
		return rc;
	shm_writer_publish(w);
	return 0;
}

struct writer_wait_arg {
	struct shm_writer *w;
	uint32_t len;
};

static int writer_ready(void *p)
{
	struct writer_wait_arg *a = p;
	uint32_t pad;
	uint32_t need = writer_need(a->w, a->len, &pad);
	if (a->w->tail + need - a->w->head <= a->w->g.size)
		return 1;
	uint64_t h = shm_load_seqcst(&a->w->g.ctl->head);
	if (h == a->w->head)
		return 0;
	int rc = writer_sync_head(a->w);
	if (rc)
		return rc;
	return a->w->tail + need - a->w->head <= a->w->g.size;
}

int shm_writer_wait(struct shm_writer *w, uint32_t len, int timeout_ms)
{
	if (w->broken)
		return w->broken;
	if (len == 0 || len > w->g.max_record)
		return len ? ROLLOUT_E_TOO_BIG : -EINVAL;
	/* Whatever is committed must be visible, or the reader may never free space. */
	shm_writer_publish(w);
	struct writer_wait_arg a = { w, len };
	return wait_on(&w->g.ctl->space_wait, &w->w, w->seg, &w->stats, writer_ready, &a, timeout_ms);
}

/* ---- reader ---- */

/* Reads the producer index and checks it: it never moves backwards and never runs more
 * than a ring ahead of what this reader handed back. */
static int reader_sync_tail(struct shm_reader *r, uint64_t t)
{
	if (t - r->tail > r->g.size || t - r->published > r->g.size || (t & (SHM_REC_ALIGN - 1)))
		return refuse(&r->stats, &r->broken);
	r->tail = t;
	return 0;
}

void shm_reader_flush(struct shm_reader *r)
{
	if (r->head == r->published || r->broken)
		return;
	shm_store_seqcst(&r->g.ctl->head, r->head);
	r->published = r->head;
	if (shm_load_seqcst(&r->g.ctl->space_wait.waiting))
		wake(&r->g.ctl->space_wait, r->w.wake_fd, &r->stats);
}

int shm_reader_peek(struct shm_reader *r, const void **data, uint32_t *len)
{
	if (r->broken)
		return r->broken;
	if (r->cur_len) {
		*data = r->copy;
		*len = r->cur_len;
		return 0;
	}
	for (;;) {
		uint64_t avail = r->tail - r->head;
		if (avail == 0) {
			uint64_t t = shm_load_acquire(&r->g.ctl->tail);
			if (t == r->tail) {
				shm_reader_flush(r);
				return -EAGAIN;
			}
			int rc = reader_sync_tail(r, t);
			if (rc)
				return rc;
			avail = r->tail - r->head;
		}
		uint32_t off = (uint32_t)(r->head & r->g.mask);
		struct shm_rec_hdr h;
		if (avail < SHM_REC_HDR_SIZE)
			return refuse(&r->stats, &r->broken);
		memcpy(&h, r->g.data + off, sizeof(h));
		if (h.type == SHM_REC_PAD) {
			uint32_t pad = r->g.size - off;
			if (off == 0 || h.len != pad || pad > avail)
				return refuse(&r->stats, &r->broken);
			r->head += pad;
			continue;
		}
		if (h.type != SHM_REC_DATA || h.len == 0 || h.len > r->g.max_record)
			return refuse(&r->stats, &r->broken);
		uint32_t span = rec_span(h.len);
		if (span > avail || off + span > r->g.size)
			return refuse(&r->stats, &r->broken);
		memcpy(r->copy, r->g.data + off + SHM_REC_HDR_SIZE, h.len);
		r->cur_len = h.len;
		r->cur_span = span;
		*data = r->copy;
		*len = h.len;
		return 0;
	}
}

void shm_reader_release(struct shm_reader *r)
{
	if (!r->cur_len)
		return;
	r->head += r->cur_span;
	r->stats.records++;
	r->stats.bytes += r->cur_len;
	r->cur_len = 0;
	r->cur_span = 0;
	if (r->head - r->published >= r->g.size / 4)
		shm_reader_flush(r);
}

uint64_t shm_reader_pending(const struct shm_reader *r)
{
	if (r->broken)
		return 0;
	uint64_t t = shm_load_acquire(&r->g.ctl->tail);
	uint64_t n = t - r->head;
	return n > r->g.size ? 0 : n;
}

static int reader_ready(void *p)
{
	struct shm_reader *r = p;
	if (r->broken)
		return r->broken;
	if (r->cur_len || r->tail != r->head)
		return 1;
	return shm_load_seqcst(&r->g.ctl->tail) != r->tail;
}

int shm_reader_wait(struct shm_reader *r, int timeout_ms)
{
	if (r->broken)
		return r->broken;
	/* Hand space back before sleeping, or a writer waiting for it would never wake us. */
	shm_reader_flush(r);
	return wait_on(&r->g.ctl->data_wait, &r->w, r->seg, &r->stats, reader_ready, r, timeout_ms);
}

int shm_reader_arm(struct shm_reader *r)
{
	if (r->broken)
		return r->broken;
	shm_reader_flush(r);
	shm_store_seqcst(&r->g.ctl->data_wait.waiting, r->w.wait_fd >= 0 ? WAIT_EVENTFD : WAIT_FUTEX);
	if (reader_ready(r)) {
		shm_store_relaxed(&r->g.ctl->data_wait.waiting, 0u);
		return -EAGAIN;
	}
	r->stats.sleeps++;
	return 0;
}

void shm_reader_disarm(struct shm_reader *r)
{
	shm_store_relaxed(&r->g.ctl->data_wait.waiting, 0u);
	if (r->w.wait_fd >= 0) {
		uint64_t v;
		ssize_t n = read(r->w.wait_fd, &v, sizeof(v));
		(void)n;
	}
}
