/* A trainer attached to rolloutd, as its shard holds it: the segment with its two rings,
 * the attach socket (whose EOF is the trainer's death notice) and the completion backlog,
 * where completions wait while the trainer's completion ring is full. The backlog is
 * bounded: past TRAINER_BACKLOG_BYTES the shard stops reading the trainer's requests until
 * it drains, so what waits is at most what was already in flight. */
#ifndef ROLLOUT_COORDINATOR_TRAINER_H
#define ROLLOUT_COORDINATOR_TRAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "router.h"

#define TRAINER_BACKLOG_BYTES (64u << 20)

struct backlog;

struct trainer {
	struct rt_client rc; /* the router's view; first, so a client converts back */
	int sock, sq_wake, cq_wake;
	struct shm_seg seg;
	struct shm_reader r;
	struct shm_writer w;
	char name[32];
	pid_t pid;
	uid_t uid;
	bool dead;             /* leaving: freed by its shard at the next turn */
	bool blocked;          /* the router asked to leave the next record in the ring */
	uint32_t max_transfer; /* largest record carried in pieces */
	struct {               /* a request arriving in pieces */
		uint8_t *buf;
		size_t total, got;
		uint64_t request_id;
		bool discard; /* over max_transfer: read and dropped, then refused */
		bool whole;   /* buf holds the joined record, not yet taken by the router */
	} join;
	struct backlog *bhead, *btail;
	size_t backlog_bytes;
	uint32_t backlog_n;
	struct trainer *next;
};

static inline struct trainer *trainer_of(struct rt_client *c)
{
	return (struct trainer *)c;
}

/* Writes a completion record to the trainer's ring, or to the backlog when the ring is
 * full. A record larger than the ring's max_record becomes an OUTPUT_LIMIT completion of
 * the same request, so the one completion still arrives. Returns the change in backlog
 * entries (0 or 1), or -ENOMEM: the trainer is then marked dead (it sees its connection
 * close: never a silently lost completion). */
int trainer_complete(struct trainer *t, const void *msg, size_t len);
/* A Piece record read from the trainer's ring (verified). 1: t->join.buf holds the whole
 * request (its size in t->join.total) for the router; 0: more pieces are to come, or the
 * request was over max_transfer and has been answered BAD_REQUEST; -EPROTO: pieces out
 * of order (the trainer is then dead). */
int trainer_piece(struct trainer *t, const void *rec);
/* Drops the joined request once the router has taken it. */
void trainer_piece_taken(struct trainer *t);
/* Streamed output for the trainer: into its ring now, or dropped (false) when the ring is
 * full, a backlog waits (it would overtake completions) or it is over max_record. */
bool trainer_stream(struct trainer *t, const void *msg, size_t len);

/* Moves backlog into the ring and publishes; returns the number of entries moved. */
int trainer_flush(struct trainer *t);

/* Whether the backlog is over its bound (reading the trainer's requests pauses). */
static inline bool trainer_backlogged(const struct trainer *t)
{
	return t->backlog_bytes > TRAINER_BACKLOG_BYTES;
}

/* Reads the attach socket after it polled readable: EOF, an error or a detach request mark
 * the trainer dead. */
void trainer_on_socket(struct trainer *t);

/* Drops the backlog, closes the segment, the wake-ups and the socket, frees t. Returns the
 * number of backlog entries dropped. */
uint32_t trainer_destroy(struct trainer *t);

#endif
