/* A trainer's completion path: a completion over the trainer's max_record (and over
 * max_transfer) arrives as one OUTPUT_LIMIT completion of the same request and later
 * completions still flow (issue 10 #2); one within max_transfer arrives in pieces, in order,
 * that join into the same bytes, even through the backlog; a full ring fills the backlog,
 * which drains in order when the trainer reads. Requests in pieces are joined, refused
 * over max_transfer with their own request id, and pieces out of order end the trainer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "completion.h"
#include "trainer.h"

static struct trainer *T;
static struct shm_reader R; /* the trainer's side of the completion ring */

static int setup(void **state)
{
	(void)state;
	T = calloc(1, sizeof(*T));
	T->sock = T->sq_wake = T->cq_wake = -1;
	struct shm_seg_opts o = {
		.sq_size = 65536, .cq_size = 65536, .cq_max_record = 4096, .memory_node = -1
	};
	assert_int_equal(shm_seg_create(&T->seg, &o), 0);
	struct shm_waitcfg w;
	shm_waitcfg_default(&w);
	assert_int_equal(shm_writer_init(&T->w, &T->seg, SHM_CQ, &w), 0);
	assert_int_equal(shm_reader_init(&R, &T->seg, SHM_CQ, &w), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	shm_reader_destroy(&R);
	trainer_destroy(T);
	return 0;
}

static size_t completion(uint8_t *buf, size_t cap, uint64_t rid, size_t msglen)
{
	char *text = malloc(msglen + 1);
	memset(text, 'x', msglen);
	text[msglen] = 0;
	struct rw_completion k = { .request_id = rid, .status = rw_Status_OK, .message = text };
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	ssize_t n = rw_completion_build(&b, &k);
	free(text);
	assert_true(n > 0);
	return (size_t)n;
}

static int next(struct rw_completion *k)
{
	const void *d;
	uint32_t len;
	int rc = shm_reader_peek(&R, &d, &len);
	if (rc)
		return rc;
	assert_int_equal(rw_Message_verify(d, len), 0);
	assert_int_equal(rw_completion_read(d, k), 0);
	shm_reader_release(&R);
	return 0;
}

/* The next record as raw bytes (copied into out); its size, or 0 when none waits. */
static size_t next_raw(uint8_t *out, size_t cap)
{
	const void *d;
	uint32_t len;
	if (shm_reader_peek(&R, &d, &len))
		return 0;
	assert_true(len <= cap);
	memcpy(out, d, len);
	shm_reader_release(&R);
	return len;
}

static void test_big_completion_in_pieces(void **state)
{
	(void)state;
	T->max_transfer = 1 << 20;
	static uint8_t big[60000] __attribute__((aligned(8)));
	static uint8_t joined[60000] __attribute__((aligned(8)));
	static uint8_t rec[4096] __attribute__((aligned(8)));
	size_t n = completion(big, sizeof(big), 21, 50000);
	/* The ring (64 KiB) cannot hold it all at once with what comes next: some pieces wait
	 * in the backlog, and a small completion after it must not pass them. */
	assert_true(trainer_complete(T, big, n) >= 0);
	size_t m = completion(rec, sizeof(rec), 22, 10);
	assert_true(trainer_complete(T, rec, m) >= 0);
	size_t got = 0, pieces = 0;
	for (;;) {
		trainer_flush(T);
		size_t len = next_raw(rec, sizeof(rec));
		assert_true(len > 0);
		assert_int_equal(rw_Message_verify(rec, len), 0);
		const rw_Piece_t *p = rw_Message_body_as_Piece(rw_Message_root(rec));
		if (!p)
			break;
		pieces++;
		assert_int_equal(rw_Piece_request_id(p), 21);
		assert_int_equal(rw_Piece_total(p), n);
		assert_int_equal(rw_Piece_offset(p), got);
		const uint8_t *d;
		size_t dn = rw_Piece_data(p, &d);
		memcpy(joined + got, d, dn);
		got += dn;
	}
	assert_true(pieces >= 13); /* 50 KB in pieces under 4 KiB */
	assert_int_equal(got, n);
	assert_memory_equal(joined, big, n);
	/* Then the small one, whole. */
	struct rw_completion k;
	assert_int_equal(rw_completion_read(rec, &k), 0);
	assert_int_equal(k.request_id, 22);
}

/* Builds piece records of the n bytes at msg for request rid into recs (stride 4096). */
static size_t make_pieces(uint8_t recs[][4096], const uint8_t *msg, size_t n, uint64_t rid, size_t room)
{
	size_t k = 0;
	for (size_t off = 0; off < n; off += room, k++) {
		size_t dn = n - off < room ? n - off : room;
		struct fb_builder b;
		fb_builder_init(&b, recs[k], 4096);
		assert_true(rw_piece_build(&b, rid, (uint32_t)n, (uint32_t)off, msg + off, dn) > 0);
	}
	return k;
}

static void test_request_in_pieces(void **state)
{
	(void)state;
	static uint8_t msg[10000], recs[8][4096] __attribute__((aligned(8)));
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	T->max_transfer = 1 << 20;
	size_t k = make_pieces(recs, msg, sizeof(msg), 31, 3000);
	assert_int_equal(k, 4);
	for (size_t i = 0; i + 1 < k; i++) {
		assert_int_equal(trainer_piece(T, recs[i]), 0);
		assert_false(T->join.whole);
	}
	assert_int_equal(trainer_piece(T, recs[k - 1]), 1);
	assert_true(T->join.whole);
	assert_int_equal(T->join.total, sizeof(msg));
	assert_memory_equal(T->join.buf, msg, sizeof(msg));
	trainer_piece_taken(T);
	assert_null(T->join.buf);

	/* Over max_transfer: read and dropped, then its request completes BAD_REQUEST. */
	T->max_transfer = 5000;
	for (size_t i = 0; i + 1 < k; i++)
		assert_int_equal(trainer_piece(T, recs[i]), 0);
	assert_int_equal(trainer_piece(T, recs[k - 1]), 0);
	assert_false(T->join.whole);
	trainer_flush(T);
	struct rw_completion c;
	assert_int_equal(next(&c), 0);
	assert_int_equal(c.request_id, 31);
	assert_int_equal(c.status, rw_Status_BAD_REQUEST);
	assert_false(T->dead);

	/* A piece out of order ends the trainer. */
	T->max_transfer = 1 << 20;
	assert_int_equal(trainer_piece(T, recs[0]), 0);
	assert_int_equal(trainer_piece(T, recs[2]), -EPROTO);
	assert_true(T->dead);
}

static void test_over_max_record(void **state)
{
	(void)state;
	static uint8_t big[16384] __attribute__((aligned(8)));
	size_t n = completion(big, sizeof(big), 11, 9000);
	assert_true(n > 4096);
	assert_int_equal(trainer_complete(T, big, n), 0);
	n = completion(big, sizeof(big), 12, 10);
	assert_int_equal(trainer_complete(T, big, n), 0);
	trainer_flush(T);
	struct rw_completion k;
	assert_int_equal(next(&k), 0);
	assert_int_equal(k.request_id, 11);
	assert_int_equal(k.status, rw_Status_OUTPUT_LIMIT);
	assert_false(k.infra_failed);
	assert_int_equal(next(&k), 0);
	assert_int_equal(k.request_id, 12);
	assert_int_equal(k.status, rw_Status_OK);
	assert_int_equal(next(&k), -EAGAIN);
	assert_false(T->dead);
}

static void test_backlog_in_order(void **state)
{
	(void)state;
	static uint8_t buf[4096] __attribute__((aligned(8)));
	int backlogged = 0;
	for (uint64_t i = 1; i <= 200; i++) {
		size_t n = completion(buf, sizeof(buf), i, 1000);
		int rc = trainer_complete(T, buf, n);
		assert_true(rc == 0 || rc == 1);
		backlogged += rc;
	}
	assert_true(backlogged > 100); /* a 64 KiB ring holds about 60 of them */
	assert_int_equal(T->backlog_n, (uint32_t)backlogged);
	uint64_t want = 1;
	for (int rounds = 0; want <= 200 && rounds < 100; rounds++) {
		trainer_flush(T);
		struct rw_completion k;
		while (next(&k) == 0)
			assert_int_equal(k.request_id, want++);
	}
	assert_int_equal(want, 201);
	assert_int_equal(T->backlog_n, 0);
	assert_int_equal(T->backlog_bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_over_max_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_completion_in_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_in_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_in_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
