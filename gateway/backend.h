/* The gateway's one attachment to rolloutd: a librollout client used only from the event
 * thread. Every rolloutd action is an op with a callback; ops that find the submission
 * ring full wait in a FIFO and are retried as completions free space, so an HTTP request
 * never blocks the loop. Requests are flushed once per loop turn (batched). */
#ifndef ROLLOUT_GATEWAY_BACKEND_H
#define ROLLOUT_GATEWAY_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rollout/rollout.h"

enum gw_op_kind { GW_OP_OPEN, GW_OP_EXEC, GW_OP_CLOSE, GW_OP_SIGNAL };

struct gw_op;
/* Called once per op with its completion (pointers valid only during the call), or with
 * a synthesized completion (status SHUTTING_DOWN, infra_failed) when the gateway stops. */
typedef void (*gw_op_done)(struct gw_op *op, const struct rollout_completion *c);
/* Streamed output of an exec submitted with stream set (c->partial), before its done. */
typedef void (*gw_op_partial)(struct gw_op *op, const struct rollout_completion *c);

/* An op owns copies of everything it submits (argv, env, stdin), so it can wait in the
 * backlog. Created by gw_op_new(); freed by the backend after its callback returns. */
struct gw_op {
	uint64_t id;
	enum gw_op_kind kind;
	gw_op_done done;
	void *ctx;
	uint64_t sandbox;
	char *profile;
	char **argv; /* NULL-terminated */
	struct rollout_env *env;
	size_t nenv;
	char *cwd;
	uint8_t *in;
	size_t in_len;
	uint32_t timeout_ms, output_cap;
	bool stream; /* exec: output streamed to partial while it runs */
	gw_op_partial partial;
	uint64_t target; /* signal: the exec op's id */
	int signo;
	uint64_t deadline_ns;
	uint64_t t0_ns;
	const char *fail_msg;
	struct gw_op *hnext, *qnext;
};

struct gw_backend {
	rollout_client *c;
	uint64_t next_id;
	struct gw_op **tab; /* in flight, by id */
	size_t nbuckets;
	struct gw_op *qhead, *qtail; /* waiting for ring space */
	struct gw_op *failed;        /* refused at submit: their callbacks run at the next poll */
	size_t inflight, backlog;
	bool dirty; /* submitted since the last flush */
};

int gw_backend_init(struct gw_backend *b, rollout_client *c);
/* Fails every op in flight or waiting (SHUTTING_DOWN), then frees the tables. */
void gw_backend_destroy(struct gw_backend *b);

struct gw_op *gw_op_new(enum gw_op_kind kind, gw_op_done done, void *ctx);
/* Copies argv (NULL-terminated) into the op. */
int gw_op_set_argv(struct gw_op *op, const char *const *argv);
int gw_op_add_env(struct gw_op *op, const char *name, const char *value);
/* Frees an op that was never submitted. */
void gw_op_free(struct gw_op *op);

/* Hands op to rolloutd (or the backlog). Takes ownership in every case; the callback
 * never runs inside this call (a refused op completes at the next gw_backend_poll), so a
 * caller may submit before or after suspending its HTTP connection. */
void gw_backend_submit(struct gw_backend *b, struct gw_op *op);
/* Reads every waiting completion and runs callbacks, retries the backlog, flushes.
 * Returns the number of completions or a negative code when rolloutd is gone. */
int gw_backend_poll(struct gw_backend *b);
/* Publishes what was submitted since the last call. */
void gw_backend_flush(struct gw_backend *b);

uint64_t gw_now_ns(void);

#endif
