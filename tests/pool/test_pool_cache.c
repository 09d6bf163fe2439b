/* The answer cache alone (pool/cache.c): dedupe, expiry in finishing order whatever still
 * runs, pinned answers kept until delivered, the byte budget, and the release callback
 * the pool uses to know when a peer has nothing cached. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

#define S 1000000000ull

static int released[8];

static void on_release(void *arg, uint64_t peer)
{
	(void)arg;
	released[peer]++;
}

static struct acache_entry *begin(struct acache *c, uint64_t peer, uint64_t d)
{
	struct acache_entry *e;
	assert_int_equal(acache_begin(c, peer, d, &e), 0);
	return e;
}

static void test_dedupe(void **state)
{
	(void)state;
	struct acache c;
	acache_init(&c, 60 * S, 1u << 20, NULL, NULL);
	struct acache_entry *e = begin(&c, 1, 42), *again;
	assert_int_equal(acache_begin(&c, 1, 42, &again), -EEXIST);
	assert_ptr_equal(again, e);
	assert_ptr_equal(acache_find(&c, 1, 42), e);
	assert_null(acache_find(&c, 2, 42)); /* another peer's dispatch 42 is another entry */
	assert_int_equal(acache_finish(&c, e, "answer", 6, false, 0), 0);
	assert_int_equal(acache_finish(&c, e, "other", 5, false, 0), -EALREADY);
	assert_memory_equal(e->bytes, "answer", 6);
	/* Many entries: the table grows and every one is still found. */
	for (uint64_t d = 1000; d < 21000; d++)
		begin(&c, 3, d);
	for (uint64_t d = 1000; d < 21000; d++)
		assert_non_null(acache_find(&c, 3, d));
	acache_fini(&c);
}

/* Issue 10 #8: a running entry at the front held back every answer behind it. */
static void test_expiry_ignores_running(void **state)
{
	(void)state;
	struct acache c;
	acache_init(&c, 10 * S, 1u << 20, on_release, NULL);
	memset(released, 0, sizeof(released));
	struct acache_entry *running = begin(&c, 1, 1); /* first in, never finishes */
	struct acache_entry *a = begin(&c, 2, 2), *b = begin(&c, 2, 3);
	assert_int_equal(acache_finish(&c, b, "b", 1, false, 1 * S), 0);
	assert_int_equal(acache_finish(&c, a, "a", 1, false, 2 * S), 0);
	assert_int_equal(acache_expire(&c, 10 * S), 0);
	/* b finished first and goes first; a one second later; the running one stays. */
	assert_int_equal(acache_expire(&c, 11 * S), 1);
	assert_null(acache_find(&c, 2, 3));
	assert_non_null(acache_find(&c, 2, 2));
	assert_int_equal(acache_expire(&c, 12 * S), 1);
	assert_null(acache_find(&c, 2, 2));
	assert_int_equal(released[2], 2);
	assert_ptr_equal(acache_find(&c, 1, 1), running);
	assert_int_equal(acache_expire(&c, 1000 * S), 0);
	assert_int_equal(acache_count(&c), 1);
	/* When it finishes, its TTL starts then. */
	assert_int_equal(acache_finish(&c, running, "r", 1, false, 500 * S), 0);
	assert_int_equal(acache_expire(&c, 509 * S), 0);
	assert_int_equal(acache_expire(&c, 510 * S), 1);
	assert_int_equal(released[1], 1);
	assert_int_equal(acache_count(&c), 0);
	acache_fini(&c);
}

/* Issue 10 #7: an answer not yet delivered is never expired; delivered, it ages. */
static void test_pinned_until_delivered(void **state)
{
	(void)state;
	struct acache c;
	acache_init(&c, 1 * S, 64, NULL, NULL); /* a budget everything exceeds */
	struct acache_entry *e = begin(&c, 1, 7);
	assert_int_equal(acache_finish(&c, e, "undelivered answer", 18, true, 0), 0);
	assert_int_equal(acache_expire(&c, 100 * S), 0);
	assert_non_null(acache_find(&c, 1, 7));
	acache_unpin(&c, e, 100 * S);
	assert_int_equal(acache_expire(&c, 100 * S), 1); /* over budget: goes at once */
	acache_fini(&c);
}

static void test_byte_budget(void **state)
{
	(void)state;
	struct acache c;
	char big[1000];
	memset(big, 'x', sizeof(big));
	acache_init(&c, 3600 * S, 10 * (sizeof(big) + sizeof(struct acache_entry)), NULL, NULL);
	for (uint64_t d = 0; d < 50; d++)
		assert_int_equal(acache_finish(&c, begin(&c, 1, d), big, sizeof(big), false, d), 0);
	assert_int_equal(acache_expire(&c, 100), 40);
	assert_true(acache_bytes(&c) <= 10 * (sizeof(big) + sizeof(struct acache_entry)));
	/* The oldest went; the newest ten stay. */
	assert_null(acache_find(&c, 1, 39));
	assert_non_null(acache_find(&c, 1, 40));
	assert_non_null(acache_find(&c, 1, 49));
	/* A running entry counts but is never evicted by the budget. */
	struct acache_entry *run = begin(&c, 2, 1);
	assert_int_equal(acache_finish(&c, run, big, sizeof(big), true, 200), 0);
	acache_expire(&c, 200);
	assert_non_null(acache_find(&c, 2, 1));
	acache_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedupe),
		cmocka_unit_test(test_expiry_ignores_running),
		cmocka_unit_test(test_pinned_until_delivered),
		cmocka_unit_test(test_byte_budget),
	};
	return cmocka_run_group_tests_name("pool_cache", tests, NULL, NULL);
}
