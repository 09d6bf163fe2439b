/* The error map: every project code has a distinct value, a name and a message, and
 * errno values fall through to the C library. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "rollout/error.h"

static void test_project_codes(void **state)
{
	(void)state;
	static const int codes[] = {
#define X(name, value, msg) value,
		ROLLOUT_ERRNO_MAP(X)
#undef X
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++) {
		assert_true(codes[i] <= -1000);
		assert_string_not_equal(rollout_strerror(codes[i]), "unknown error");
		assert_int_equal(strncmp(rollout_err_name(codes[i]), "ROLLOUT_E_", 10), 0);
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	assert_string_equal(rollout_err_name(ROLLOUT_E_VERIFY), "ROLLOUT_E_VERIFY");
}

static void test_errno_fallthrough(void **state)
{
	(void)state;
	assert_string_equal(rollout_strerror(-ENOSPC), strerror(ENOSPC));
	assert_string_equal(rollout_err_name(-ENOSPC), "ENOSPC");
	assert_string_equal(rollout_strerror(0), "success");
	assert_string_equal(rollout_strerror(-999999), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_project_codes),
		cmocka_unit_test(test_errno_fallthrough),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
