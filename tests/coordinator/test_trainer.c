/* A trainer's completion path: a completion over the trainer's max_record arrives as one
 * OUTPUT_LIMIT completion of the same request and later completions still flow (issue 10
 * #2); a full ring fills the backlog, which drains in order when the trainer reads. */
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
		cmocka_unit_test_setup_teardown(test_backlog_in_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
