/* The wire runtime: builder and accessors agree, the builder fails cleanly when memory
 * runs out, buffers made by flatc read field by field, hand-made malformed buffers are
 * each refused with their specific error, and 100k mutated buffers never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog.h"
#include "rollout/error.h"
#include "rollout_wire.h"

#define BUF_CAP 8192
static _Alignas(8) uint8_t buf[BUF_CAP];
static _Alignas(8) uint8_t work[BUF_CAP + 8];

static size_t build(const char *name)
{
	for (size_t i = 0; i < wt_catalog_len; i++)
		if (!strcmp(wt_catalog[i].name, name)) {
			ssize_t n = wt_catalog[i].build(buf, sizeof(buf));
			assert_true(n > 0);
			return (size_t)n;
		}
	fail_msg("no catalog message %s", name);
	return 0;
}

static int verify(const uint8_t *b, size_t len)
{
	return rw_Message_verify_ex(b, len, NULL, NULL);
}

/* ------------------------------------------------------------ layout helpers */

static uint32_t rd32(const uint8_t *b, uint32_t at)
{
	uint32_t v;
	memcpy(&v, b + at, 4);
	return v;
}

static void wr32(uint8_t *b, uint32_t at, uint32_t v)
{
	memcpy(b + at, &v, 4);
}

static void wr16(uint8_t *b, uint32_t at, uint16_t v)
{
	memcpy(b + at, &v, 2);
}

static uint32_t vtable_of(const uint8_t *b, uint32_t tpos)
{
	int32_t soff;
	memcpy(&soff, b + tpos, 4);
	return (uint32_t)((int64_t)tpos - soff);
}

/* Position of the vtable slot for field id of the table at tpos. */
static uint32_t slot_of(const uint8_t *b, uint32_t tpos, uint16_t id)
{
	return vtable_of(b, tpos) + 4 + 2 * id;
}

static uint32_t field_at(const uint8_t *b, uint32_t tpos, uint16_t id)
{
	uint16_t off;
	memcpy(&off, b + slot_of(b, tpos, id), 2);
	assert_int_not_equal(off, 0);
	return tpos + off;
}

static uint32_t deref(const uint8_t *b, uint32_t fpos)
{
	return fpos + rd32(b, fpos);
}

/* Positions inside the "exec" catalog message. */
struct exec_layout {
	uint32_t msg, req, exec;
};

static struct exec_layout exec_layout(const uint8_t *b)
{
	struct exec_layout l;
	l.msg = rd32(b, 0);
	l.req = deref(b, field_at(b, l.msg, 3));
	l.exec = deref(b, field_at(b, l.req, 3));
	return l;
}

/* ------------------------------------------------------------ round trips */

static void test_catalog_verifies_and_prints(void **state)
{
	(void)state;
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	for (size_t i = 0; i < wt_catalog_len; i++) {
		ssize_t n = wt_catalog[i].build(buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(n % 8, 0);
		assert_int_equal(rw_Message_verify(buf, (size_t)n), 0);
		assert_int_equal(rw_Message_to_json(buf, null), 0);
	}
	fclose(null);
}

static void test_exec_fields(void **state)
{
	(void)state;
	size_t n = build("exec");
	assert_int_equal(verify(buf, n), 0);
	const rw_Message_t *m = rw_Message_root(buf);
	assert_int_equal(rw_Message_schema_version(m), 1);
	assert_false(rw_Message_has_schema_version(m));
	assert_int_equal(rw_Message_dispatch_id(m), 0);
	assert_int_equal(rw_Message_body_type(m), rw_Body_Request);
	assert_null(rw_Message_body_as_Completion(m));
	const rw_Request_t *r = rw_Message_body_as_Request(m);
	assert_non_null(r);
	assert_int_equal(rw_Request_request_id(r), 1);
	assert_int_equal(rw_Request_deadline_ns(r), 123456789012ull);
	const rw_Exec_t *e = rw_Request_action_as_Exec(r);
	assert_non_null(e);
	assert_null(rw_Request_action_as_Open(r));
	assert_int_equal(rw_Exec_sandbox(e), 0x00c0ffee00000001ull);
	fb_strvec_t av = rw_Exec_argv(e);
	assert_int_equal(fb_strvec_len(av), 3);
	assert_string_equal(fb_strvec_at(av, 0), "python3");
	assert_string_equal(fb_strvec_at(av, 1), "-c");
	assert_int_equal(fb_strvec_at_len(av, 1), 2);
	assert_null(rw_Exec_shell(e));
	const uint8_t *in;
	assert_int_equal(rw_Exec_stdin(e, &in), 5);
	assert_memory_equal(in, "in\0\xff\n", 5);
	fb_tabvec_t env = rw_Exec_env(e);
	assert_int_equal(fb_tabvec_len(env), 2);
	assert_string_equal(rw_EnvVar_name(rw_Exec_env_at(env, 1)), "LANG");
	assert_string_equal(rw_EnvVar_value(rw_Exec_env_at(env, 1)), "C.UTF-8");
	assert_string_equal(rw_Exec_cwd(e), "src/pkg");
	assert_int_equal(rw_Exec_cwd_len(e), 7);
	assert_int_equal(rw_Exec_timeout_ms(e), 30000);
	assert_int_equal(rw_Exec_output_cap(e), 65536);
}

static void test_defaults_and_absent(void **state)
{
	(void)state;
	size_t n = build("exec_shell");
	assert_int_equal(verify(buf, n), 0);
	const rw_Exec_t *e = rw_Request_action_as_Exec(rw_Message_body_as_Request(rw_Message_root(buf)));
	assert_string_equal(rw_Exec_shell(e), "grep -c ok out.txt | tee n.txt");
	assert_int_equal(fb_strvec_len(rw_Exec_argv(e)), 0);
	const uint8_t *p = (const uint8_t *)1;
	assert_int_equal(rw_Exec_stdin(e, &p), 0);
	assert_null(p);
	assert_null(rw_Exec_cwd(e));
	assert_int_equal(rw_Exec_timeout_ms(e), 0);
	/* PutFile.mode defaults to 0644 and a default value is not written. */
	n = build("put_file");
	const rw_PutFile_t *pf =
	    rw_Request_action_as_PutFile(rw_Message_body_as_Request(rw_Message_root(buf)));
	assert_int_equal(rw_PutFile_mode(pf), 0755);
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	rw_PutFile_start(&b);
	rw_PutFile_add_mode(&b, 420);
	fb_ref_t t = rw_PutFile_end(&b);
	assert_int_not_equal(t, 0);
	assert_int_equal(b.err, 0);
}

static void test_completion_fields(void **state)
{
	(void)state;
	size_t n = build("exec_result");
	assert_int_equal(verify(buf, n), 0);
	const rw_Completion_t *c = rw_Message_body_as_Completion(rw_Message_root(buf));
	assert_non_null(c);
	assert_int_equal(rw_Completion_status(c), rw_Status_OK);
	assert_false(rw_Completion_infra_failed(c));
	const rw_ExecResult_t *r = rw_Completion_result_as_ExecResult(c);
	assert_int_equal(rw_ExecResult_exit_code(r), 3);
	const uint8_t *out;
	assert_int_equal(rw_ExecResult_stdout(r, &out), 7);
	assert_memory_equal(out, "ok\n\0\xc3\x28\x80", 7);
	assert_true(rw_ExecResult_stdout_truncated(r));
	assert_false(rw_ExecResult_stderr_truncated(r));
	assert_int_equal(rw_ExecResult_peak_memory_kib(r), 2048);
	n = build("sandbox_lost");
	c = rw_Message_body_as_Completion(rw_Message_root(buf));
	assert_int_equal(rw_Completion_status(c), rw_Status_SANDBOX_LOST);
	assert_true(rw_Completion_infra_failed(c));
	assert_int_equal(rw_Completion_result_type(c), rw_Result_NONE);
	assert_string_equal(rw_Status_name(rw_Status_SANDBOX_LOST), "SANDBOX_LOST");
	assert_null(rw_Status_name(999));
	n = build("forked");
	const uint64_t *ids;
	r = NULL;
	const rw_Forked_t *f =
	    rw_Completion_result_as_Forked(rw_Message_body_as_Completion(rw_Message_root(buf)));
	assert_int_equal(rw_Forked_sandboxes(f, &ids), 3);
	assert_int_equal(ids[2], 0xffffffffffffffffull);
}

/* Every capacity short of the finished size fails with -ENOSPC and never writes outside
 * the caller's memory; the exact size succeeds. */
static void test_enospc_boundaries(void **state)
{
	(void)state;
	for (size_t m = 0; m < wt_catalog_len; m++) {
		ssize_t full = wt_catalog[m].build(buf, sizeof(buf));
		assert_true(full > 0);
		for (size_t cap = 0; cap <= (size_t)full; cap++) {
			memset(work, 0xa5, sizeof(work));
			ssize_t n = wt_catalog[m].build(work, cap);
			for (size_t i = cap; i < sizeof(work); i++)
				assert_int_equal(work[i], 0xa5);
			if (cap < (size_t)full) {
				assert_int_equal(n, -ENOSPC);
			} else {
				assert_int_equal(n, full);
				assert_memory_equal(work, buf, (size_t)full);
			}
		}
	}
}

static void test_build_in_place_vector(void **state)
{
	(void)state;
	struct fb_builder b;
	fb_builder_init(&b, buf, sizeof(buf));
	fb_ref_t ref;
	uint8_t *p = fb_start_vec_u8(&b, 1000, &ref);
	assert_non_null(p);
	for (int i = 0; i < 1000; i++)
		p[i] = (uint8_t)i;
	rw_FileData_start(&b);
	rw_FileData_add_data(&b, ref);
	fb_ref_t fd = rw_FileData_end(&b);
	rw_Completion_start(&b);
	rw_Completion_add_result(&b, rw_Result_FileData, fd);
	fb_ref_t c = rw_Completion_end(&b);
	rw_Message_start(&b);
	rw_Message_add_body(&b, rw_Body_Completion, c);
	ssize_t n = rw_Message_finish(&b, rw_Message_end(&b));
	assert_true(n > 1000);
	assert_int_equal(verify(buf, (size_t)n), 0);
	const uint8_t *d;
	const rw_FileData_t *f =
	    rw_Completion_result_as_FileData(rw_Message_body_as_Completion(rw_Message_root(buf)));
	assert_int_equal(rw_FileData_data(f, &d), 1000);
	assert_int_equal(d[999], (uint8_t)999);
	/* A vector larger than the memory: -ENOSPC, not a wrap. */
	fb_builder_init(&b, buf, 64);
	assert_null(fb_start_vec(&b, 0x40000001u, 8, 8, &ref));
	assert_int_equal(b.err, -ENOSPC);
}

/* ------------------------------------------------------------ flatc-made buffers */

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *b = aligned_alloc(8, 1 << 16);
	*len = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static uint8_t *flatc_bin(const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/tests/wire/flatc/%s.rlw", getenv("ROLLOUT_BINARY_DIR"), name);
	uint8_t *b = read_file(path, len);
	if (!b)
		fail_msg("missing %s (built by flatc -b at build time)", path);
	assert_int_equal(verify(b, *len), 0);
	return b;
}

static void test_flatc_built_fields(void **state)
{
	(void)state;
	size_t len;
	uint8_t *b = flatc_bin("exec", &len);
	const rw_Exec_t *e = rw_Request_action_as_Exec(rw_Message_body_as_Request(rw_Message_root(b)));
	assert_non_null(e);
	assert_int_equal(rw_Exec_sandbox(e), 0x00c0ffee00000001ull);
	assert_string_equal(fb_strvec_at(rw_Exec_argv(e), 2), "print('h\u00e9llo \"q\"\\n')");
	const uint8_t *in;
	assert_int_equal(rw_Exec_stdin(e, &in), 5);
	assert_memory_equal(in, "in\0\xff\n", 5);
	assert_string_equal(rw_EnvVar_value(rw_Exec_env_at(rw_Exec_env(e), 0)), "/usr/bin:/bin");
	assert_int_equal(rw_Exec_output_cap(e), 65536);
	free(b);

	b = flatc_bin("pool_hello", &len);
	const rw_PoolHello_t *h = rw_Message_body_as_PoolHello(rw_Message_root(b));
	assert_string_equal(rw_PoolHello_identity(h), "pool-3.rollout-pool:5555");
	assert_int_equal(rw_PoolHello_boot_id(h), 0x1122334455667788ull);
	fb_tabvec_t caps = rw_PoolHello_capacity(h);
	assert_int_equal(fb_tabvec_len(caps), 2);
	assert_string_equal(rw_ProfileCapacity_profile(rw_PoolHello_capacity_at(caps, 1)), "noop");
	assert_int_equal(rw_ProfileCapacity_free(rw_PoolHello_capacity_at(caps, 0)), 500);
	assert_false(rw_ProfileCapacity_noop(rw_PoolHello_capacity_at(caps, 0)));
	assert_true(rw_ProfileCapacity_noop(rw_PoolHello_capacity_at(caps, 1)));
	free(b);

	b = flatc_bin("exec_signalled", &len);
	const rw_Completion_t *c = rw_Message_body_as_Completion(rw_Message_root(b));
	assert_int_equal(rw_Completion_status(c), rw_Status_TIMEOUT);
	assert_string_equal(rw_Completion_message(c), "wall-clock timeout after 30000 ms");
	assert_int_equal(rw_ExecResult_signal(rw_Completion_result_as_ExecResult(c)), 9);
	free(b);

	b = flatc_bin("forked", &len);
	const uint64_t *ids;
	assert_int_equal(
	    rw_Forked_sandboxes(
		rw_Completion_result_as_Forked(rw_Message_body_as_Completion(rw_Message_root(b))), &ids),
	    3);
	assert_int_equal(ids[0], 11);
	free(b);

	b = flatc_bin("cancel", &len);
	assert_int_equal(rw_Message_dispatch_id(rw_Message_root(b)), 0x3000000000000031ull);
	assert_int_equal(rw_Cancel_target_dispatch_id(rw_Message_body_as_Cancel(rw_Message_root(b))),
			 0x300000000000002aull);
	free(b);
}

static void test_flatc_built_all_verify(void **state)
{
	(void)state;
	for (size_t i = 0; i < wt_catalog_len; i++) {
		size_t len;
		free(flatc_bin(wt_catalog[i].name, &len));
	}
}

/* ------------------------------------------------------------ malformed buffers */

static void expect(const uint8_t *b, size_t len, const struct fb_verify_opts *o, int code)
{
	struct fb_verify_result res = { 0 };
	int rc = rw_Message_verify_ex(b, len, o, &res);
	if (rc != -code)
		fail_msg("expected %s, got %s (offset %u)", fb_verify_err_name(code), fb_verify_err_name(rc),
			 res.offset);
	assert_int_equal(res.error, code);
	if (code && !o)
		assert_int_equal(rw_Message_verify(b, len), ROLLOUT_E_VERIFY);
}

static void test_malformed(void **state)
{
	(void)state;
	size_t n = build("exec");
	struct exec_layout l = exec_layout(buf);
	uint8_t *b = work;
#define FRESH() memcpy(b, buf, n)

	/* buffer-level */
	expect(NULL, 64, NULL, FB_VERR_BUFFER_NULL);
	FRESH();
	memmove(b + 1, b, n);
	expect(b + 1, n, NULL, FB_VERR_BUFFER_MISALIGNED);
	FRESH();
	expect(b, 0, NULL, FB_VERR_BUFFER_TOO_SMALL);
	expect(b, 7, NULL, FB_VERR_BUFFER_TOO_SMALL);
	struct fb_verify_opts small = { .max_size = 64 };
	expect(b, n, &small, FB_VERR_BUFFER_TOO_LARGE);
	b[4] = 'X';
	expect(b, n, NULL, FB_VERR_IDENTIFIER_MISMATCH);
	/* root offset */
	FRESH();
	wr32(b, 0, 0);
	expect(b, n, NULL, FB_VERR_OFFSET_ZERO);
	wr32(b, 0, (uint32_t)n);
	expect(b, n, NULL, FB_VERR_OFFSET_OUT_OF_BOUNDS);
	wr32(b, 0, 0xfffffffcu); /* "negative" */
	expect(b, n, NULL, FB_VERR_OFFSET_OUT_OF_BOUNDS);
	wr32(b, 0, l.msg + 1);
	expect(b, n, NULL, FB_VERR_TABLE_MISALIGNED);
	FRESH();
	expect(b, l.msg + 2, NULL, FB_VERR_TABLE_HEADER_OUT_OF_BOUNDS); /* truncated in the header */
	/* vtable */
	FRESH();
	wr32(b, l.msg, l.msg + 64);
	expect(b, n, NULL, FB_VERR_VTABLE_OUT_OF_BOUNDS); /* before the buffer */
	wr32(b, l.msg, (uint32_t) - (int32_t)n);
	expect(b, n, NULL, FB_VERR_VTABLE_OUT_OF_BOUNDS); /* past the end */
	FRESH();
	wr32(b, l.msg, rd32(b, l.msg) + 1);
	expect(b, n, NULL, FB_VERR_VTABLE_MISALIGNED);
	FRESH();
	wr16(b, vtable_of(b, l.msg), 7);
	expect(b, n, NULL, FB_VERR_VTABLE_SIZE_INVALID); /* odd */
	wr16(b, vtable_of(b, l.msg), 2);
	expect(b, n, NULL, FB_VERR_VTABLE_SIZE_INVALID); /* smaller than its header */
	wr16(b, vtable_of(b, l.msg), 0xfffe);
	expect(b, n, NULL, FB_VERR_VTABLE_SIZE_INVALID); /* oversized, past the buffer */
	FRESH();
	wr16(b, vtable_of(b, l.msg) + 2, 2);
	expect(b, n, NULL, FB_VERR_TABLE_SIZE_INVALID);
	wr16(b, vtable_of(b, l.msg) + 2, 0xfff0);
	expect(b, n, NULL, FB_VERR_TABLE_SIZE_INVALID);
	/* fields */
	FRESH();
	wr16(b, slot_of(b, l.exec, 6), 0x200); /* timeout_ms beyond the table */
	expect(b, n, NULL, FB_VERR_FIELD_OUT_OF_TABLE);
	FRESH();
	{
		uint16_t off;
		memcpy(&off, b + slot_of(b, l.exec, 0), 2); /* sandbox: ulong */
		wr16(b, slot_of(b, l.exec, 0), (uint16_t)(off ^ 4));
		expect(b, n, NULL,
		       (l.exec + (off ^ 4)) % 8 ? FB_VERR_FIELD_MISALIGNED : FB_VERR_FIELD_OUT_OF_TABLE);
	}
	/* strings */
	uint32_t cwd_f = field_at(buf, l.exec, 5), cwd = deref(buf, cwd_f);
	FRESH();
	wr32(b, cwd_f, 0);
	expect(b, n, NULL, FB_VERR_OFFSET_ZERO); /* points at itself */
	wr32(b, cwd_f, (uint32_t)n);
	expect(b, n, NULL, FB_VERR_OFFSET_OUT_OF_BOUNDS);
	FRESH();
	wr32(b, cwd_f, rd32(b, cwd_f) + 1);
	expect(b, n, NULL, FB_VERR_STRING_MISALIGNED);
	FRESH();
	wr32(b, cwd, 0x7ffffff0u);
	expect(b, n, NULL, FB_VERR_STRING_OUT_OF_BOUNDS);
	wr32(b, cwd, 0xffffffffu);
	expect(b, n, NULL, FB_VERR_STRING_OUT_OF_BOUNDS); /* length overflow */
	FRESH();
	b[cwd + 4 + 7] = '!';
	expect(b, n, NULL, FB_VERR_STRING_NOT_TERMINATED);
	FRESH();
	expect(b, cwd + 6, NULL, FB_VERR_OFFSET_OUT_OF_BOUNDS); /* truncated before the string */
	/* vectors */
	uint32_t in_f = field_at(buf, l.exec, 3), in = deref(buf, in_f);
	FRESH();
	wr32(b, in, 0xffffffffu);
	expect(b, n, NULL, FB_VERR_VECTOR_OUT_OF_BOUNDS);
	FRESH();
	wr32(b, in_f, rd32(b, in_f) + 2);
	expect(b, n, NULL, FB_VERR_VECTOR_MISALIGNED);
	uint32_t argv = deref(buf, field_at(buf, l.exec, 1));
	FRESH();
	wr32(b, argv, 0x40000001u); /* count * 4 wraps 32 bits */
	expect(b, n, NULL, FB_VERR_VECTOR_OUT_OF_BOUNDS);
	FRESH();
	wr32(b, argv + 4, 0);
	expect(b, n, NULL, FB_VERR_OFFSET_ZERO); /* element pointing at itself */
	struct fb_verify_opts vec1 = { .max_vec_len = 1 };
	FRESH();
	expect(b, n, &vec1, FB_VERR_VECTOR_TOO_LONG);
	/* unions */
	FRESH();
	b[field_at(buf, l.req, 2)] = 200;
	expect(b, n, NULL, FB_VERR_UNION_TYPE_UNKNOWN);
	FRESH();
	wr16(b, slot_of(b, l.req, 3), 0);
	expect(b, n, NULL, FB_VERR_UNION_VALUE_MISSING);
	FRESH();
	wr16(b, slot_of(b, l.req, 2), 0);
	expect(b, n, NULL, FB_VERR_UNION_TYPE_MISSING);
	FRESH();
	b[field_at(buf, l.req, 2)] = rw_Action_Close; /* an Exec read as a Close: still a valid table */
	expect(b, n, NULL, FB_VERR_OK);
	/* limits */
	struct fb_verify_opts shallow = { .max_depth = 3 };
	FRESH();
	expect(b, n, &shallow, FB_VERR_DEPTH_LIMIT);
	struct fb_verify_opts few = { .max_tables = 4 };
	expect(b, n, &few, FB_VERR_TABLE_LIMIT);
	/* bool */
	size_t m = build("exec_result");
	memcpy(b, buf, m);
	uint32_t comp = deref(b, field_at(b, rd32(b, 0), 3));
	uint32_t res = deref(b, field_at(b, comp, 5));
	b[field_at(b, res, 4)] = 2; /* stdout_truncated */
	expect(b, m, NULL, FB_VERR_BOOL_INVALID);
	/* every truncation of a valid buffer is refused */
	n = build("exec");
	for (size_t cut = 0; cut < n; cut++) {
		memcpy(b, buf, cut);
		assert_int_not_equal(verify(b, cut), 0);
	}
#undef FRESH
}

/* ------------------------------------------------------------ mutation */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_mutation(void **state)
{
	(void)state;
	const char *env = getenv("ROLLOUT_MUTATIONS");
	long total = env ? atol(env) : 100000;
	FILE *null = fopen("/dev/null", "w");
	assert_non_null(null);
	long accepted = 0;
	for (long it = 0; it < total; it++) {
		const struct wt_message *msg = &wt_catalog[rnd() % wt_catalog_len];
		ssize_t n = msg->build(buf, sizeof(buf));
		assert_true(n > 0);
		size_t len = (size_t)n;
		/* Work on a heap copy of exactly len bytes so ASan sees any read past it. */
		uint8_t *m = aligned_alloc(8, (len + 7) & ~(size_t)7);
		memcpy(m, buf, len);
		int edits = 1 + (int)(rnd() % 4);
		for (int k = 0; k < edits; k++) {
			size_t at = rnd() % len;
			switch (rnd() % 5) {
			case 0:
				m[at] ^= (uint8_t)(1u << (rnd() % 8));
				break;
			case 1:
				m[at] = (uint8_t)rnd();
				break;
			case 2:
				if (at + 4 <= len)
					wr32(m, (uint32_t)(at & ~(size_t)3), (uint32_t)rnd());
				break;
			case 3:
				if (at + 2 <= len)
					wr16(m, (uint32_t)(at & ~(size_t)1), (uint16_t)(rnd() % 64));
				break;
			case 4:
				len = at < 8 ? len : at; /* truncate */
				break;
			}
		}
		if (verify(m, len) == 0) {
			accepted++;
			/* Anything the verifier accepts is safe to read in full. */
			assert_int_equal(rw_Message_to_json(m, null), 0);
		}
		free(m);
	}
	fclose(null);
	print_message("%ld mutations, %ld still valid\n", total, accepted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_verifies_and_prints),
		cmocka_unit_test(test_exec_fields),
		cmocka_unit_test(test_defaults_and_absent),
		cmocka_unit_test(test_completion_fields),
		cmocka_unit_test(test_enospc_boundaries),
		cmocka_unit_test(test_build_in_place_vector),
		cmocka_unit_test(test_flatc_built_fields),
		cmocka_unit_test(test_flatc_built_all_verify),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_mutation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
