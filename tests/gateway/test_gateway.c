/* rollout-gateway's pure parts: routing, Connect envelope framing and error shapes,
 * config parsing and its errors, the sandbox table with its metadata filter, and the
 * JSON helpers (base64 bytes, text that is not UTF-8). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "connect.h"
#include "gw.h"
#include "route.h"
#include "sandbox.h"

static void test_routes(void **state)
{
	(void)state;
	struct gw_route r;
	gw_route("POST", "/v2/sandboxes", &r);
	assert_int_equal(r.kind, GW_R_CREATE);
	assert_true(r.api_key);
	gw_route("POST", "/sandboxes", &r);
	assert_int_equal(r.kind, GW_R_CREATE);
	gw_route("GET", "/v2/sandboxes", &r);
	assert_int_equal(r.kind, GW_R_LIST);
	gw_route("GET", "/sandboxes/iabc123", &r);
	assert_int_equal(r.kind, GW_R_GET);
	assert_string_equal(r.id, "iabc123");
	gw_route("DELETE", "/sandboxes/iabc123", &r);
	assert_int_equal(r.kind, GW_R_KILL);
	gw_route("PUT", "/sandboxes/iabc123", &r);
	assert_int_equal(r.kind, GW_R_BAD_METHOD);
	gw_route("POST", "/sandboxes/iabc123/timeout", &r);
	assert_int_equal(r.kind, GW_R_TIMEOUT);
	gw_route("POST", "/v2/sandboxes/iabc123/connect", &r);
	assert_int_equal(r.kind, GW_R_CONNECT);
	gw_route("POST", "/sandboxes/iabc123/pause", &r);
	assert_int_equal(r.kind, GW_R_UNSUPPORTED);
	assert_string_equal(r.feature, "pause");
	gw_route("POST", "/sandboxes/iabc123/fork", &r);
	assert_int_equal(r.kind, GW_R_UNSUPPORTED);
	/* ids are bounded and plain */
	gw_route("GET", "/sandboxes/a%2Fb", &r);
	assert_int_equal(r.kind, GW_R_NOT_FOUND);
	char longid[200] = "/sandboxes/";
	memset(longid + 11, 'a', 100);
	gw_route("GET", longid, &r);
	assert_int_equal(r.kind, GW_R_NOT_FOUND);
	gw_route("POST", "/process.Process/Start", &r);
	assert_int_equal(r.kind, GW_R_PROC_START);
	assert_true(r.envd);
	assert_true(r.streaming);
	assert_false(r.api_key);
	gw_route("POST", "/process.Process/List", &r);
	assert_int_equal(r.kind, GW_R_PROC_LIST);
	assert_false(r.streaming);
	gw_route("GET", "/process.Process/List", &r);
	assert_int_equal(r.kind, GW_R_BAD_METHOD);
	gw_route("POST", "/process.Process/Update", &r);
	assert_int_equal(r.kind, GW_R_RPC_UNSUPPORTED);
	gw_route("POST", "/process.Process/Nope", &r);
	assert_int_equal(r.kind, GW_R_NOT_FOUND);
	gw_route("POST", "/filesystem.Filesystem/ListDir", &r);
	assert_int_equal(r.kind, GW_R_FS_LIST);
	gw_route("POST", "/filesystem.Filesystem/WatchDir", &r);
	assert_int_equal(r.kind, GW_R_RPC_UNSUPPORTED);
	assert_true(r.streaming);
	gw_route("GET", "/files", &r);
	assert_int_equal(r.kind, GW_R_FILES_GET);
	gw_route("POST", "/files", &r);
	assert_int_equal(r.kind, GW_R_FILES_POST);
	gw_route("DELETE", "/files", &r);
	assert_int_equal(r.kind, GW_R_BAD_METHOD);
	gw_route("GET", "/health", &r);
	assert_int_equal(r.kind, GW_R_HEALTH);
	gw_route("GET", "/metrics", &r);
	assert_int_equal(r.kind, GW_R_METRICS);
	gw_route("GET", "/", &r);
	assert_int_equal(r.kind, GW_R_NOT_FOUND);
	for (int k = 0; k < GW_R__COUNT; k++)
		assert_string_not_equal(gw_route_name(k), "unknown");
}

static void test_envelopes(void **state)
{
	(void)state;
	uint8_t buf[64];
	connect_envelope_hdr(buf, 0, 2);
	memcpy(buf + 5, "{}", 2);
	uint8_t flags;
	const uint8_t *msg;
	uint32_t len;
	assert_int_equal(connect_envelope_read(buf, 7, 1024, &flags, &msg, &len), 7);
	assert_int_equal(flags, 0);
	assert_int_equal(len, 2);
	assert_memory_equal(msg, "{}", 2);
	/* incomplete: header or message cut */
	assert_int_equal(connect_envelope_read(buf, 4, 1024, &flags, &msg, &len), 0);
	assert_int_equal(connect_envelope_read(buf, 6, 1024, &flags, &msg, &len), 0);
	/* over the limit, compressed */
	connect_envelope_hdr(buf, 0, 0x7fffffff);
	assert_int_equal(connect_envelope_read(buf, 64, 1024, &flags, &msg, &len), -E2BIG);
	connect_envelope_hdr(buf, CONNECT_FLAG_COMPRESSED, 2);
	assert_int_equal(connect_envelope_read(buf, 7, 1024, &flags, &msg, &len), -EPROTO);
	connect_envelope_hdr(buf, CONNECT_FLAG_END, 0x01020304);
	assert_int_equal(buf[0], 2);
	assert_int_equal(buf[1], 1);
	assert_int_equal(buf[4], 4);
	char *s = connect_end_json(CONNECT_OK, NULL);
	assert_string_equal(s, "{}");
	free(s);
	s = connect_end_json(CONNECT_DEADLINE_EXCEEDED, "too slow");
	assert_string_equal(s, "{\"error\":{\"code\":\"deadline_exceeded\",\"message\":\"too slow\"}}");
	free(s);
	s = connect_error_json(CONNECT_NOT_FOUND, "x");
	assert_string_equal(s, "{\"code\":\"not_found\",\"message\":\"x\"}");
	free(s);
	assert_int_equal(connect_code_http(CONNECT_UNAUTHENTICATED), 401);
	assert_int_equal(connect_code_http(CONNECT_UNAVAILABLE), 503);
	assert_int_equal(connect_code_http(CONNECT_UNIMPLEMENTED), 501);
	assert_string_equal(connect_code_name(CONNECT_ABORTED), "aborted");
	assert_string_equal(connect_code_name((enum connect_code)99), "unknown");
}

static int parse(const char *text, struct gw_config *c, char *err)
{
	return gw_config_parse("t.yaml", text, strlen(text), c, err, 256);
}

static void test_config(void **state)
{
	(void)state;
	struct gw_config c;
	char err[256];
	assert_int_equal(
	    parse("rolloutd:\n  socket: /tmp/rd.sock\ngateway:\n  listen: 127.0.0.1:8080\n"
		  "  api_keys: [key-one-123, key-two-456]\n  templates: {base: default, py: python}\n"
		  "  default_timeout_s: 60\n  login_shell: true\n",
		  &c, err),
	    0);
	assert_string_equal(c.listen, "127.0.0.1:8080");
	assert_string_equal(c.socket, "/tmp/rd.sock"); /* rolloutd's socket by default */
	assert_int_equal(c.napi_keys, 2);
	assert_true(gw_config_key_ok(&c, "key-two-456"));
	assert_false(gw_config_key_ok(&c, "key-two-45"));
	assert_false(gw_config_key_ok(&c, NULL));
	assert_string_equal(gw_config_profile(&c, "py"), "python");
	assert_null(gw_config_profile(&c, "nope"));
	assert_int_equal(c.default_timeout_s, 60);
	assert_true(c.login_shell);
	assert_string_equal(c.workdir, "/tmp");
	gw_config_free(&c);
	/* templates default to base -> default */
	assert_int_equal(parse("gateway: {listen: ':9', api_keys: [abcdefgh]}\n", &c, err), -EINVAL);
	assert_non_null(strstr(err, "listen"));
	gw_config_free(&c);
	assert_int_equal(parse("gateway: {listen: 'h:9', api_keys: [abcdefgh]}\n", &c, err), 0);
	assert_string_equal(gw_config_profile(&c, "base"), "default");
	gw_config_free(&c);
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "pool: {}\n", "gateway: section missing" },
		{ "gateway: {api_keys: [abcdefgh]}\n", "listen: required" },
		{ "gateway: {listen: 'h:1'}\n", "api_keys: required" },
		{ "gateway:\n  listen: h:1\n  api_keys: [short]\n", "t.yaml:3: api_keys" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  bogus: 1\n",
		  "t.yaml:4: bogus: unknown key" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  default_timeout_s: -5\n",
		  "default_timeout_s" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  max_body_bytes: 99999999999\n",
		  "max_body_bytes" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  templates: [a, b]\n",
		  "templates: expected a map" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  templates: {a: x, a: y}\n",
		  "listed twice" },
		{ "gateway:\n  listen: h:1\n  listen: h:2\n  api_keys: [abcdefgh]\n", "given twice" },
		{ "gateway:\n  listen: h:70000\n  api_keys: [abcdefgh]\n", "HOST:PORT" },
		{ "gateway: [1, 2]\n", "expected a mapping" },
		{ "gateway: {listen: [\n", "t.yaml:" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  workdir: rel\n", "absolute" },
		{ "gateway:\n  listen: h:1\n  api_keys: [abcdefgh]\n  login_shell: maybe\n",
		  "true or false" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		int rc = parse(bad[i].text, &c, err);
		if (rc == 0 || !strstr(err, bad[i].want))
			fail_msg("case %zu: rc=%d err=\"%s\", want \"%s\"", i, rc, err, bad[i].want);
		gw_config_free(&c);
	}
	assert_int_equal(gw_config_load("/nonexistent/gw.yaml", &c, err, sizeof(err)), -ENOENT);
	gw_config_free(&c);
	assert_int_equal(gw_config_load("/tmp", &c, err, sizeof(err)), -EINVAL);
	gw_config_free(&c);
}

static void test_sandbox_table(void **state)
{
	(void)state;
	struct gw_registry r;
	assert_int_equal(gw_registry_init(&r, 7), 0);
	struct gw_sandbox *a = gw_sandbox_new("base", "default"), *b = gw_sandbox_new("base", "default");
	assert_non_null(a);
	assert_int_equal(strlen(a->id), GW_SB_ID_LEN);
	assert_true(gw_id_valid(a->id));
	assert_string_not_equal(a->id, b->id);
	assert_string_not_equal(a->token, b->token);
	json_object_set_new(a->metadata, "user", json_string("a b"));
	json_object_set_new(a->metadata, "run", json_string("1"));
	json_object_set_new(b->metadata, "run", json_string("1"));
	gw_sandbox_add(&r, a);
	gw_sandbox_add(&r, b);
	assert_ptr_equal(gw_sandbox_find(&r, a->id), a);
	assert_int_equal(r.count, 2);
	/* The JS SDK's filter: encodeURIComponent per part, then URLSearchParams. */
	json_t *f = gw_metadata_filter_parse("user=a%2520b&run=1");
	assert_non_null(f);
	assert_true(gw_sandbox_metadata_match(a, f));
	assert_false(gw_sandbox_metadata_match(b, f));
	json_decref(f);
	assert_null(gw_metadata_filter_parse("novalue"));
	assert_null(gw_metadata_filter_parse("k=%zz"));
	struct gw_proc *p = gw_proc_new(a), *q = gw_proc_new(a);
	q->tag = strdup("t1");
	assert_ptr_equal(gw_proc_find(a, p->pid, NULL), p);
	assert_ptr_equal(gw_proc_find(a, 0, "t1"), q);
	assert_int_not_equal(p->pid, q->pid);
	gw_proc_free(p);
	assert_null(gw_proc_find(a, p == q ? 0 : 1000, NULL));
	gw_sandbox_ref(a); /* an op in flight */
	gw_sandbox_remove(&r, a);
	assert_true(a->dead);
	assert_null(gw_sandbox_find(&r, a->id));
	assert_int_equal(r.count, 1);
	gw_sandbox_unref(a);
	gw_registry_destroy(&r);
}

static void test_json_helpers(void **state)
{
	(void)state;
	json_t *j = gw_json_bytes_b64((const uint8_t *)"hello\n", 6);
	assert_string_equal(json_string_value(j), "aGVsbG8K");
	json_decref(j);
	j = gw_json_bytes_b64((const uint8_t *)"\0\xff", 2);
	assert_string_equal(json_string_value(j), "AP8=");
	json_decref(j);
	uint8_t out[16];
	assert_int_equal(gw_b64_decode("aGVsbG8K", out, sizeof(out)), 6);
	assert_memory_equal(out, "hello\n", 6);
	assert_int_equal(gw_b64_decode("AP8=", out, sizeof(out)), 2);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(gw_b64_decode("a*b", out, sizeof(out)), -EINVAL);
	assert_int_equal(gw_b64_decode("aGVsbG8KaGVsbG8KaGVsbG8K", out, 4), -E2BIG);
	j = gw_json_text("ok\xff\xc3\xa9\0x", 7);
	assert_string_equal(json_string_value(j), "ok\xef\xbf\xbd\xc3\xa9\xef\xbf\xbdx");
	json_decref(j);
	char ts[40];
	assert_string_equal(gw_iso8601(1700000000123ll, ts, sizeof(ts)), "2023-11-14T22:13:20.123Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),       cmocka_unit_test(test_envelopes),
		cmocka_unit_test(test_config),       cmocka_unit_test(test_sandbox_table),
		cmocka_unit_test(test_json_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
