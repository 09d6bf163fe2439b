/* Trainers (see trainer.h): completion delivery with a bounded backlog. */
#include "trainer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attach_proto.h"
#include "completion.h"
#include "log.h"

struct backlog {
	struct backlog *next;
	size_t len;
	uint8_t data[];
};

/* The replacement for a completion the trainer's ring cannot hold. */
static size_t too_big(const void *msg, size_t len, uint32_t max, uint8_t *out, size_t outsz)
{
	struct rw_completion k;
	if (rw_completion_read(msg, &k))
		return 0;
	char text[160];
	snprintf(text, sizeof(text),
		 "result of %zu bytes exceeds this trainer's max_record of %u: ask for a smaller output cap",
		 len, max);
	struct rw_completion r = { .request_id = k.request_id,
				   .status = rw_Status_OUTPUT_LIMIT,
				   .message = text };
	struct fb_builder b;
	fb_builder_init(&b, out, outsz);
	ssize_t n = rw_completion_build(&b, &r);
	return n > 0 ? (size_t)n : 0;
}

static bool ring_put(struct trainer *t, const void *msg, size_t len)
{
	int err;
	void *at = shm_writer_reserve(&t->w, (uint32_t)len, &err);
	if (!at)
		return false;
	memcpy(at, msg, len);
	shm_writer_commit(&t->w, (uint32_t)len);
	return true;
}

/* Room a piece record needs besides its data. */
#define PIECE_OVERHEAD 256

/* Queues a record at the end of the backlog; 0 or -ENOMEM (the trainer is then dead). */
static int backlog_add(struct trainer *t, const void *msg, size_t len)
{
	struct backlog *b = malloc(sizeof(*b) + len);
	if (!b) {
		RLOG(RLOG_ERROR, "trainer dropped: no memory for its completions", "trainer=%s", t->name);
		t->dead = true;
		return -ENOMEM;
	}
	b->next = NULL;
	b->len = len;
	memcpy(b->data, msg, len);
	if (t->btail)
		t->btail->next = b;
	else
		t->bhead = b;
	t->btail = b;
	t->backlog_bytes += len;
	t->backlog_n++;
	return 0;
}

/* A completion over max_record, in pieces written one after the other (into the ring while
 * it has room, then the backlog): nothing comes between them. Returns the backlog entries
 * added, or -ENOMEM. */
static int complete_in_pieces(struct trainer *t, const uint8_t *msg, size_t len, uint64_t request_id)
{
	size_t room = t->w.g.max_record - PIECE_OVERHEAD;
	uint8_t *tmp = NULL;
	int added = 0;
	for (size_t off = 0; off < len; off += room) {
		size_t n = len - off < room ? len - off : room;
		int err;
		void *at = t->bhead ? NULL : shm_writer_reserve(&t->w, (uint32_t)(n + PIECE_OVERHEAD), &err);
		if (!at && !tmp && !(tmp = malloc(room + PIECE_OVERHEAD))) {
			t->dead = true;
			return -ENOMEM;
		}
		struct fb_builder b;
		fb_builder_init(&b, at ? at : tmp, n + PIECE_OVERHEAD);
		ssize_t plen = rw_piece_build(&b, request_id, (uint32_t)len, (uint32_t)off, msg + off, n);
		if (at) {
			shm_writer_commit(&t->w, (uint32_t)plen);
			continue;
		}
		if (backlog_add(t, tmp, (size_t)plen)) {
			free(tmp);
			return -ENOMEM;
		}
		added++;
	}
	free(tmp);
	return added;
}

int trainer_complete(struct trainer *t, const void *msg, size_t len)
{
	uint8_t small[512] __attribute__((aligned(8)));
	if (t->dead)
		return 0;
	if (len > t->w.g.max_record && len <= t->max_transfer) {
		struct rw_completion k;
		if (rw_completion_read(msg, &k) == 0)
			return complete_in_pieces(t, msg, len, k.request_id);
	}
	if (len > t->w.g.max_record) {
		size_t n = too_big(msg, len, t->w.g.max_record, small, sizeof(small));
		RLOG(RLOG_WARN, "completion over max_record", "trainer=%s bytes=%zu max_record=%u", t->name,
		     len, t->w.g.max_record);
		if (!n) {
			t->dead = true;
			return -EMSGSIZE;
		}
		msg = small;
		len = n;
	}
	if (!t->bhead && ring_put(t, msg, len))
		return 0;
	/* The trainer is not reading fast enough: hold it here, never drop it. */
	return backlog_add(t, msg, len) ? -ENOMEM : 1;
}

int trainer_piece(struct trainer *t, const void *rec)
{
	const rw_Piece_t *p = rw_Message_body_as_Piece(rw_Message_root(rec));
	const uint8_t *data;
	size_t n = rw_Piece_data(p, &data);
	size_t total = rw_Piece_total(p), off = rw_Piece_offset(p);
	if (off == 0) {
		free(t->join.buf);
		memset(&t->join, 0, sizeof(t->join));
		t->join.total = total;
		t->join.request_id = rw_Piece_request_id(p);
		t->join.discard = total > t->max_transfer;
		if (!t->join.discard && !(t->join.buf = malloc(total ? total : 1))) {
			t->dead = true;
			return -ENOMEM;
		}
	}
	if (off != t->join.got || total != t->join.total || n > total - off || total == 0 ||
	    (!t->join.buf && !t->join.discard)) {
		RLOG(RLOG_WARN, "trainer sent pieces out of order", "trainer=%s", t->name);
		t->dead = true;
		return -EPROTO;
	}
	if (!t->join.discard)
		memcpy(t->join.buf + off, data, n);
	t->join.got += n;
	if (t->join.got < total)
		return 0;
	if (!t->join.discard) {
		t->join.whole = true;
		return 1;
	}
	char text[160];
	snprintf(text, sizeof(text), "request of %zu bytes exceeds rolloutd's max_transfer_mb (%u MiB)",
		 total, t->max_transfer >> 20);
	struct rw_completion r = { .request_id = t->join.request_id,
				   .status = rw_Status_BAD_REQUEST,
				   .message = text };
	uint8_t buf[512] __attribute__((aligned(8)));
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	ssize_t len = rw_completion_build(&b, &r);
	memset(&t->join, 0, sizeof(t->join));
	if (len > 0)
		trainer_complete(t, buf, (size_t)len);
	return 0;
}

void trainer_piece_taken(struct trainer *t)
{
	free(t->join.buf);
	memset(&t->join, 0, sizeof(t->join));
}

bool trainer_stream(struct trainer *t, const void *msg, size_t len)
{
	/* Behind the backlog it would overtake completions; too big it never fits. */
	if (t->dead || t->bhead || len > t->w.g.max_record)
		return false;
	return ring_put(t, msg, len);
}

int trainer_flush(struct trainer *t)
{
	int moved = 0;
	while (t->bhead && ring_put(t, t->bhead->data, t->bhead->len)) {
		struct backlog *b = t->bhead;
		t->bhead = b->next;
		if (!t->bhead)
			t->btail = NULL;
		t->backlog_bytes -= b->len;
		t->backlog_n--;
		free(b);
		moved++;
	}
	shm_writer_publish(&t->w);
	return moved;
}

void trainer_on_socket(struct trainer *t)
{
	char buf[256];
	ssize_t n = recv(t->sock, buf, sizeof(buf), MSG_DONTWAIT);
	/* EOF, an error, or a detach request: the trainer is leaving. */
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		t->dead = true;
	} else if (n >= (ssize_t)sizeof(struct rollout_detach_req)) {
		struct rollout_detach_req d;
		memcpy(&d, buf, sizeof(d));
		if (d.magic == ROLLOUT_ATTACH_MAGIC && d.type == ROLLOUT_DETACH_REQ)
			t->dead = true;
	}
}

uint32_t trainer_destroy(struct trainer *t)
{
	uint32_t dropped = t->backlog_n;
	while (t->bhead) {
		struct backlog *b = t->bhead;
		t->bhead = b->next;
		free(b);
	}
	free(t->join.buf);
	shm_reader_destroy(&t->r);
	if (t->seg.base)
		shm_seg_close(&t->seg);
	if (t->sock >= 0)
		close(t->sock);
	if (t->sq_wake >= 0)
		close(t->sq_wake);
	if (t->cq_wake >= 0)
		close(t->cq_wake);
	free(t);
	return dropped;
}
