/* A small synchronous client of rollout-pool's protocol (a DEALER socket speaking wire
 * Messages). It is what a coordinator says to a pool, one request at a time, used by the
 * integration tests and `rollout-bench sandbox`; rolloutd pipelines the same messages. */
#ifndef ROLLOUT_POOL_CLIENT_H
#define ROLLOUT_POOL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pc {
	void *ctx, *sock;
	uint64_t next_dispatch;
	uint8_t *buf; /* last message received (aligned copy) */
	size_t len, cap;
	uint8_t *out;
	size_t out_cap;
};

/* Result of one request, pointing into pc->buf until the next call. */
struct pc_result {
	int status;
	bool infra;
	const char *message;
	uint64_t sandbox;
	int exit_code, signal;
	const uint8_t *out, *err, *data;
	size_t out_len, err_len, data_len;
	bool out_trunc, err_trunc, data_trunc;
	uint64_t wall_us, cpu_us, peak_kib;
	const char *snapshot, *checkpoint; /* Snapshotted.snapshot; Completion.checkpoint */
	uint64_t snapshot_bytes, snapshot_files, frozen_us, checkpoint_rid;
};

int pc_connect(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms);
/* The same over CURVE: the pool's public key and this client's key pair, all Z85. A pool
 * that refuses the key never answers: this returns -ETIMEDOUT after timeout_ms. */
int pc_connect_curve(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		     const char *server_public, const char *public_key, const char *secret_key,
		     int timeout_ms);
/* Connects with a chosen ROUTER routing id (a reconnect with the same id takes over the
 * old connection's place at the pool). wait_hello false: the hello is sent, the PoolHello
 * is left to be read like any other message. */
int pc_connect_as(struct pc *c, const char *endpoint, const char *identity, uint32_t lease_ms,
		  const char *routing_id, bool wait_hello);
void pc_close(struct pc *c);
/* Sends raw bytes as one message (tests use it for malformed input). */
int pc_send_raw(struct pc *c, const void *buf, size_t len);
/* Receives the next message within timeout_ms; returns its body type or a negative code. */
int pc_recv(struct pc *c, int timeout_ms);
int pc_heartbeat(struct pc *c, uint64_t seq);

/* Each sends one Request with a fresh dispatch id (or `dispatch` when nonzero) and waits for
 * its Completion (other messages, such as capacity updates, are skipped). */
int pc_open(struct pc *c, const char *profile, struct pc_result *r, int timeout_ms);
/* An open from a snapshot (NULL: none) asking for a checkpoint every N mutating steps. */
int pc_open_ex(struct pc *c, const char *profile, const char *snapshot, uint32_t checkpoint_every,
	       struct pc_result *r, int timeout_ms);
int pc_send_open_ex(struct pc *c, uint64_t dispatch, const char *profile, const char *snapshot);
int pc_snapshot(struct pc *c, uint64_t sandbox, bool checkpoint, struct pc_result *r, int timeout_ms);
int pc_exec(struct pc *c, uint64_t sandbox, const char *shell, const char *const *argv,
	    const void *stdin_data, size_t stdin_len, uint32_t timeout_ms, uint32_t output_cap,
	    struct pc_result *r, int timeout_wait_ms);
int pc_put(struct pc *c, uint64_t sandbox, const char *path, const void *data, size_t len,
	   struct pc_result *r);
int pc_get(struct pc *c, uint64_t sandbox, const char *path, uint32_t max_bytes, struct pc_result *r);
int pc_close_sandbox(struct pc *c, uint64_t sandbox, struct pc_result *r);
/* Builds the exec request with a chosen dispatch id and sends it without waiting. */
int pc_send_exec(struct pc *c, uint64_t dispatch, uint64_t sandbox, const char *shell, uint32_t timeout_ms);
/* Send one request with a chosen dispatch id, without waiting for its completion. */
int pc_send_open(struct pc *c, uint64_t dispatch, const char *profile);
int pc_send_put(struct pc *c, uint64_t dispatch, uint64_t sandbox, const char *path, const void *data,
		size_t len);
int pc_send_close(struct pc *c, uint64_t dispatch, uint64_t sandbox);
/* Fills r from the last message received (a verified Completion). */
void pc_result_of(struct pc *c, struct pc_result *r);
/* Waits for the completion of `dispatch`; fills r. */
int pc_wait(struct pc *c, uint64_t dispatch, struct pc_result *r, int timeout_ms);

/* Starts `rollout-pool --config path` as a child and waits until it answers a hello. */
pid_t pc_spawn_pool(const char *binary, const char *config, const char *endpoint, int timeout_ms);

#endif
