/* The egress allowlist and range grammar (pool/net.c), without root or a network: what each
 * entry allows, and that every malformed one is refused with a reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net.h"

static struct net_rule parse_ok(const char *s, char *host, size_t cap)
{
	struct net_rule r;
	char why[200];
	int rc = net_parse_entry(s, &r, host, cap, why, sizeof(why));
	if (rc)
		fail_msg("'%s' refused: %s", s, why);
	return r;
}

static void test_entries(void **state)
{
	(void)state;
	char host[256];
	struct net_rule r = parse_ok("10.1.0.0/16", host, sizeof(host));
	assert_int_equal(r.addr, 0x0a010000u);
	assert_int_equal(r.prefix, 16);
	assert_int_equal(r.protos, NET_TCP | NET_UDP);
	assert_int_equal(r.port_lo, 0);
	assert_int_equal(r.port_hi, 65535);
	assert_string_equal(host, "");
	r = parse_ok("192.0.2.7:443/tcp", host, sizeof(host));
	assert_int_equal(r.addr, 0xc0000207u);
	assert_int_equal(r.prefix, 32);
	assert_int_equal(r.protos, NET_TCP);
	assert_int_equal(r.port_lo, 443);
	assert_int_equal(r.port_hi, 443);
	r = parse_ok("10.0.0.0/8:8000-8099/udp", host, sizeof(host));
	assert_int_equal(r.protos, NET_UDP);
	assert_int_equal(r.port_lo, 8000);
	assert_int_equal(r.port_hi, 8099);
	r = parse_ok("pypi.org:443", host, sizeof(host));
	assert_string_equal(host, "pypi.org");
	assert_int_equal(r.port_lo, 443);
	assert_int_equal(r.protos, NET_TCP | NET_UDP);
	r = parse_ok("0.0.0.0/0:53/udp", host, sizeof(host));
	assert_int_equal(r.prefix, 0);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = { "10.0.0.0/33",
					   "10.0.0.1/8",
					   "1.2.3.4:0",
					   "1.2.3.4:65536",
					   "1.2.3.4:9-8",
					   "1.2.3.4:x",
					   "pypi.org",
					   "::1",
					   "[::1]:80",
					   "300.1.1.1",
					   "1.2.3",
					   "",
					   ":80",
					   "-bad.host:80",
					   "a_b.example:80",
					   "10.0.0.0/8/tcp/udp",
					   "1.2.3.4:80/sctp" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct net_rule r;
		char host[256], why[200] = "";
		if (net_parse_entry(bad[i], &r, host, sizeof(host), why, sizeof(why)) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(why) > 0);
	}
}

static void test_range(void **state)
{
	(void)state;
	uint32_t base;
	uint8_t prefix;
	char why[200];
	assert_int_equal(net_parse_range("10.250.0.0/16", &base, &prefix, why, sizeof(why)), 0);
	assert_int_equal(base, 0x0afa0000u);
	assert_int_equal(prefix, 16);
	assert_int_equal(net_parse_range("100.64.0.0/10", &base, &prefix, why, sizeof(why)), 0);
	assert_int_equal(net_parse_range("172.20.0.0/16", &base, &prefix, why, sizeof(why)), 0);
	static const char *const bad[] = { "8.8.0.0/16",  "10.0.0.0/29",   "10.0.0.0/7",
					   "10.0.0.1/16", "172.32.0.0/16", "10.0.0.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (net_parse_range(bad[i], &base, &prefix, why, sizeof(why)) == 0)
			fail_msg("range '%s' was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_entries), cmocka_unit_test(test_refused),
					    cmocka_unit_test(test_range) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
