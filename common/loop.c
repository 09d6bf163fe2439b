/* The event loop (see loop.h). Registrations live in a table indexed by fd; the epoll tag
 * carries the fd and a generation, so an event for an fd that was deleted (and perhaps
 * reused) earlier in the same batch is recognised and dropped. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util.h"

#define LOOP_BATCH 128

struct loop_reg {
	loop_io_fn fn;
	void *arg;
	uint32_t gen; /* bumped at every add and del */
	bool used;
};

struct loop_timer {
	uint64_t interval, next;
	loop_timer_fn fn;
	void *arg;
};

struct loop {
	int epfd;
	struct loop_reg *regs;
	size_t nregs;
	struct loop_timer *timers;
	size_t ntimers;
	loop_idle_fn idle;
	void *idle_arg;
	bool more; /* the idle hook left work */
};

int loop_create(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int rc = -errno;
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->regs);
	free(l->timers);
	free(l);
}

static int reserve(struct loop *l, int fd)
{
	if ((size_t)fd < l->nregs)
		return 0;
	size_t n = l->nregs ? l->nregs : 64;
	while (n <= (size_t)fd)
		n *= 2;
	struct loop_reg *r = realloc(l->regs, n * sizeof(*r));
	if (!r)
		return -ENOMEM;
	memset(r + l->nregs, 0, (n - l->nregs) * sizeof(*r));
	l->regs = r;
	l->nregs = n;
	return 0;
}

static uint64_t tag(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *arg)
{
	if (fd < 0)
		return -EBADF;
	int rc = reserve(l, fd);
	if (rc)
		return rc;
	struct loop_reg *r = &l->regs[fd];
	if (r->used)
		return -EEXIST;
	r->gen++;
	struct epoll_event ev = { .events = events, .data.u64 = tag(fd, r->gen) };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	r->fn = fn;
	r->arg = arg;
	r->used = true;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= l->nregs || !l->regs[fd].used)
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.u64 = tag(fd, l->regs[fd].gen) };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nregs || !l->regs[fd].used)
		return -ENOENT;
	struct loop_reg *r = &l->regs[fd];
	r->used = false;
	r->gen++;
	r->fn = NULL;
	/* The fd may already be closed by its owner (then epoll forgot it by itself). */
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT)
		return -errno;
	return 0;
}

int loop_every(struct loop *l, uint64_t interval_ns, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t = realloc(l->timers, (l->ntimers + 1) * sizeof(*t));
	if (!t)
		return -ENOMEM;
	l->timers = t;
	t[l->ntimers++] = (struct loop_timer){ .interval = interval_ns ? interval_ns : 1,
					       .next = rollout__now_ns() + interval_ns,
					       .fn = fn,
					       .arg = arg };
	return 0;
}

void loop_set_idle(struct loop *l, loop_idle_fn fn, void *arg)
{
	l->idle = fn;
	l->idle_arg = arg;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	uint64_t now = rollout__now_ns();
	int wait = l->more ? 0 : max_wait_ms;
	for (size_t i = 0; i < l->ntimers && wait; i++) {
		uint64_t due = l->timers[i].next;
		int ms = due <= now ? 0 : (int)((due - now + 999999) / 1000000);
		if (wait < 0 || ms < wait)
			wait = ms;
	}
	struct epoll_event evs[LOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, LOOP_BATCH, wait);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)evs[i].data.u64;
		uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
		if ((size_t)fd >= l->nregs || !l->regs[fd].used || l->regs[fd].gen != gen)
			continue;   /* deleted earlier in this batch */
		if (l->regs[fd].fn) /* NULL: a wake-up only; the idle hook does the work */
			l->regs[fd].fn(l->regs[fd].arg, evs[i].events);
	}
	now = rollout__now_ns();
	for (size_t i = 0; i < l->ntimers; i++) {
		struct loop_timer *t = &l->timers[i];
		if (t->next > now)
			continue;
		/* No catch-up bursts after a stall: the next run is one interval from now. */
		t->next = now + t->interval;
		loop_timer_fn fn = t->fn; /* t moves if the callback adds a timer */
		fn(t->arg, now);
	}
	l->more = l->idle ? l->idle(l->idle_arg) : false;
	return n;
}
