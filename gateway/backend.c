/* rolloutd ops of the gateway (see backend.h). */
#include "backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t gw_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int gw_backend_init(struct gw_backend *b, rollout_client *c)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->next_id = 1;
	b->nbuckets = 4096;
	b->tab = calloc(b->nbuckets, sizeof(*b->tab));
	return b->tab ? 0 : -ENOMEM;
}

struct gw_op *gw_op_new(enum gw_op_kind kind, gw_op_done done, void *ctx)
{
	struct gw_op *op = calloc(1, sizeof(*op));
	if (op) {
		op->kind = kind;
		op->done = done;
		op->ctx = ctx;
	}
	return op;
}

int gw_op_set_argv(struct gw_op *op, const char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	op->argv = calloc(n + 1, sizeof(char *));
	if (!op->argv)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(op->argv[i] = strdup(argv[i])))
			return -ENOMEM;
	return 0;
}

int gw_op_add_env(struct gw_op *op, const char *name, const char *value)
{
	if (op->nenv >= 128)
		return -E2BIG;
	struct rollout_env *e = realloc(op->env, (op->nenv + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	op->env = e;
	e[op->nenv].name = strdup(name);
	e[op->nenv].value = strdup(value);
	op->nenv++;
	return e[op->nenv - 1].name && e[op->nenv - 1].value ? 0 : -ENOMEM;
}

void gw_op_free(struct gw_op *op)
{
	if (!op)
		return;
	free(op->profile);
	for (size_t i = 0; op->argv && op->argv[i]; i++)
		free(op->argv[i]);
	free(op->argv);
	for (size_t i = 0; i < op->nenv; i++) {
		free((char *)op->env[i].name);
		free((char *)op->env[i].value);
	}
	free(op->env);
	free(op->cwd);
	free(op->in);
	free(op);
}

static void fail_op(struct gw_op *op, int status, const char *msg)
{
	struct rollout_completion c = {
		.request_id = op->id, .status = status, .infra_failed = true, .message = msg
	};
	op->done(op, &c);
	gw_op_free(op);
}

static int try_submit(struct gw_backend *b, struct gw_op *op)
{
	switch (op->kind) {
	case GW_OP_OPEN:
		return rollout_open(b->c, op->id, op->profile, op->deadline_ns);
	case GW_OP_EXEC: {
		struct rollout_exec e = { .argv = (const char *const *)op->argv,
					  .stdin_data = op->in,
					  .stdin_len = op->in_len,
					  .env = op->env,
					  .env_len = op->nenv,
					  .cwd = op->cwd,
					  .timeout_ms = op->timeout_ms,
					  .output_cap = op->output_cap,
					  .flags = op->stream ? ROLLOUT_EXEC_STREAM : 0 };
		return rollout_exec(b->c, op->id, op->sandbox, &e, op->deadline_ns);
	}
	case GW_OP_CLOSE:
		return rollout_close(b->c, op->id, op->sandbox);
	case GW_OP_SIGNAL:
		return rollout_signal(b->c, op->id, op->sandbox, op->target, op->signo);
	}
	return -EINVAL;
}

static void defer_fail(struct gw_backend *b, struct gw_op *op, int rc)
{
	op->fail_msg = rc == ROLLOUT_E_TOO_BIG ? "request larger than rolloutd's max_record"
					       : "rolloutd refused the request";
	op->qnext = b->failed;
	b->failed = op;
}

static void track(struct gw_backend *b, struct gw_op *op)
{
	size_t h = op->id % b->nbuckets;
	op->hnext = b->tab[h];
	b->tab[h] = op;
	b->inflight++;
	b->dirty = true;
}

void gw_backend_submit(struct gw_backend *b, struct gw_op *op)
{
	op->id = b->next_id++;
	op->t0_ns = gw_now_ns();
	if (b->qhead) { /* keep order: nothing passes what already waits */
		op->qnext = NULL;
		b->qtail->qnext = op;
		b->qtail = op;
		b->backlog++;
		return;
	}
	int rc = try_submit(b, op);
	if (rc == 0) {
		track(b, op);
		return;
	}
	if (rc == -EAGAIN) {
		b->qhead = b->qtail = op;
		op->qnext = NULL;
		b->backlog++;
		return;
	}
	defer_fail(b, op, rc);
}

static void retry_backlog(struct gw_backend *b)
{
	while (b->qhead) {
		struct gw_op *op = b->qhead;
		int rc = try_submit(b, op);
		if (rc == -EAGAIN)
			return;
		b->qhead = op->qnext;
		if (!b->qhead)
			b->qtail = NULL;
		b->backlog--;
		if (rc == 0)
			track(b, op);
		else
			defer_fail(b, op, rc);
	}
}

static struct gw_op *take(struct gw_backend *b, uint64_t id, bool keep)
{
	for (struct gw_op **pp = &b->tab[id % b->nbuckets]; *pp; pp = &(*pp)->hnext)
		if ((*pp)->id == id) {
			struct gw_op *op = *pp;
			if (!keep) {
				*pp = op->hnext;
				b->inflight--;
			}
			return op;
		}
	return NULL;
}

int gw_backend_poll(struct gw_backend *b)
{
	int n = 0;
	while (b->failed) {
		struct gw_op *op = b->failed;
		b->failed = op->qnext;
		fail_op(op, 4 /* BAD_REQUEST */, op->fail_msg);
	}
	for (;;) {
		struct rollout_completion c;
		int rc = rollout_next(b->c, &c);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break;
		struct gw_op *op = take(b, c.request_id, c.partial);
		if (!op)
			continue; /* not ours (cannot happen: one client, our ids) */
		if (c.partial) {
			if (op->partial)
				op->partial(op, &c);
			continue;
		}
		op->done(op, &c);
		gw_op_free(op);
		n++;
	}
	rollout_release(b->c);
	retry_backlog(b);
	gw_backend_flush(b);
	return n;
}

void gw_backend_flush(struct gw_backend *b)
{
	if (b->dirty) {
		rollout_flush(b->c);
		b->dirty = false;
	}
}

void gw_backend_destroy(struct gw_backend *b)
{
	while (b->failed) {
		struct gw_op *op = b->failed;
		b->failed = op->qnext;
		fail_op(op, 9 /* SHUTTING_DOWN */, "the gateway is shutting down");
	}
	while (b->qhead) {
		struct gw_op *op = b->qhead;
		b->qhead = op->qnext;
		fail_op(op, 9 /* SHUTTING_DOWN */, "the gateway is shutting down");
	}
	for (size_t h = 0; b->tab && h < b->nbuckets; h++)
		while (b->tab[h]) {
			struct gw_op *op = b->tab[h];
			b->tab[h] = op->hnext;
			fail_op(op, 9, "the gateway is shutting down");
		}
	free(b->tab);
	b->tab = NULL;
}
