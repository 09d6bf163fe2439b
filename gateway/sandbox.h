/* The gateway's table of E2B sandboxes: each maps an E2B sandbox id (what the SDK sees)
 * to a rollout sandbox, with its access token, template, metadata, env vars, lifetime and
 * the commands started in it. Pure bookkeeping: no I/O. A sandbox leaves the table when
 * it is killed or expires, but stays allocated while ops in flight still point at it
 * (refs). */
#ifndef ROLLOUT_GATEWAY_SANDBOX_H
#define ROLLOUT_GATEWAY_SANDBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SB_ID_LEN    20
#define GW_SB_TOKEN_LEN 32

struct gw_stream;
struct gw_op;
struct gw;

enum gw_proc_state {
	GW_PROC_WAIT_STDIN, /* started with stdin: runs when stdin is closed (the pool takes it whole) */
	GW_PROC_RUNNING,    /* its exec is queued or running in the sandbox */
	GW_PROC_ENDED,
};

/* A command (process.Process/Start). pid is the gateway's, unique within the sandbox. */
struct gw_proc {
	struct gw_sandbox *sb;
	uint32_t pid;
	enum gw_proc_state state;
	json_t *config; /* the ProcessConfig as started: cmd, args, envs, cwd (for List) */
	char *tag;
	uint8_t *in; /* stdin collected before CloseStdin */
	size_t in_len;
	struct gw_op *op;          /* prepared exec of a command waiting for CloseStdin */
	uint64_t exec_id;          /* the exec's request id once submitted (signals name it) */
	uint64_t sent[2];          /* stdout, stderr bytes sent as data events so far */
	bool signalled;            /* a signal was sent: CANCELLED means it never started */
	struct gw_stream *streams; /* observers: the Start stream and any Connect streams */
	struct gw_proc *next;
};

struct gw_sandbox {
	struct gw *gw; /* owner, for callbacks */
	char id[GW_SB_ID_LEN + 1];
	char token[GW_SB_TOKEN_LEN + 1];
	char *template_id;
	char *profile;
	uint64_t rsb;               /* rollout sandbox id */
	json_t *metadata, *envs;    /* objects of strings */
	int64_t started_ms, end_ms; /* wall clock (ms since the epoch) */
	uint64_t seq;               /* creation order: list order and page token */
	bool dead;                  /* killed or expired: out of the table */
	int refs;                   /* the table + ops in flight */
	uint32_t next_pid;
	struct gw_proc *procs;
	struct gw_sandbox *hnext, *prev, *next;
};

struct gw_registry {
	struct gw_sandbox **tab;
	size_t nbuckets, count;
	struct gw_sandbox *head, *tail; /* creation order */
	uint64_t seq;
};

int gw_registry_init(struct gw_registry *r, size_t nbuckets);
/* Frees every sandbox still listed (their ops must be gone). */
void gw_registry_destroy(struct gw_registry *r);

/* A new sandbox with a fresh random id and token, not yet in the table (refs = 1). */
struct gw_sandbox *gw_sandbox_new(const char *template_id, const char *profile);
void gw_sandbox_add(struct gw_registry *r, struct gw_sandbox *sb);
struct gw_sandbox *gw_sandbox_find(struct gw_registry *r, const char *id);
/* Takes sb out of the table (dead) and drops the table's reference. */
void gw_sandbox_remove(struct gw_registry *r, struct gw_sandbox *sb);
void gw_sandbox_ref(struct gw_sandbox *sb);
void gw_sandbox_unref(struct gw_sandbox *sb);

/* True when every key of want (an object of strings) is in sb's metadata with the same
 * value. */
bool gw_sandbox_metadata_match(const struct gw_sandbox *sb, const json_t *want);
/* Parses E2B's list filter: the query parameter `metadata`, itself a URL-encoded
 * "k=v&k2=v2" string. Returns a new object or NULL on a malformed filter. */
json_t *gw_metadata_filter_parse(const char *q);

struct gw_proc *gw_proc_new(struct gw_sandbox *sb);
struct gw_proc *gw_proc_find(struct gw_sandbox *sb, uint32_t pid, const char *tag);
/* Unlinks and frees an ended proc (its streams must be detached). */
void gw_proc_free(struct gw_proc *p);

int64_t gw_wall_ms(void);

#endif
