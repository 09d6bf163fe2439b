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

int trainer_complete(struct trainer *t, const void *msg, size_t len)
{
	uint8_t small[512] __attribute__((aligned(8)));
	if (t->dead)
		return 0;
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
	return 1;
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
