/* Completions, the one message every request ends with, built and read in one place:
 * rolloutd completes requests itself (never dispatched, pool lost, deadline), the pool
 * answers dispatches, and librollout and rolloutd read them. */
#ifndef ROLLOUT_WIRE_COMPLETION_H
#define ROLLOUT_WIRE_COMPLETION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rollout_wire.h"

struct rw_completion {
	uint64_t dispatch_id; /* 0: left out (records on a trainer ring) */
	uint64_t request_id;
	uint16_t status; /* rw_Status_* */
	bool infra_failed;
	const char *message;    /* NULL: none */
	uint8_t result_type;    /* rw_Result_NONE, or Opened / Closed / ExecResult / FileData (empty) /
				 * Snapshotted */
	uint64_t sandbox;       /* Opened.sandbox */
	bool partial;           /* streamed output, not the completion (read only) */
	const char *checkpoint; /* NULL: none; see Completion.checkpoint */
	uint64_t checkpoint_request_id;
	/* Snapshotted (result_type rw_Result_Snapshotted) */
	const char *snapshot;
	uint64_t snapshot_bytes, snapshot_files, frozen_us;
};

/* Builds a Message holding the Completion into b; returns its size or -ENOSPC. */
ssize_t rw_completion_build(struct fb_builder *b, const struct rw_completion *c);

/* Reads a verified Message. 0 and c filled (message points into buf), or -EBADMSG when the
 * body is not a Completion. */
int rw_completion_read(const void *buf, struct rw_completion *c);

/* Builds a Piece message (a slice of a record over a ring's max_record): n bytes of data
 * at offset of a record of total bytes for request_id. Its size, or -ENOSPC. */
ssize_t rw_piece_build(struct fb_builder *b, uint64_t request_id, uint32_t total, uint32_t offset,
		       const void *data, size_t n);

/* Whether a completion of an action of kind (rw_Action_*) carries what its status
 * promises: an OK Open names its sandbox (Opened), an OK Exec has an ExecResult, an OK
 * GetFile a FileData. A pool answer that fails this is refused, never followed. */
bool rw_completion_fits(const void *buf, int kind);

#endif
