/* Builds the catalog of example messages (see catalog.h). Every field of the schema
 * appears in at least one message, with values that differ from their defaults. */
#include "catalog.h"

#include "rollout_wire.h"

static fb_ref_t request(struct fb_builder *b, uint64_t id, uint8_t type, fb_ref_t action)
{
	rw_Request_start(b);
	rw_Request_add_request_id(b, id);
	rw_Request_add_deadline_ns(b, 123456789012ull);
	rw_Request_add_action(b, type, action);
	return rw_Request_end(b);
}

static ssize_t message(struct fb_builder *b, uint64_t dispatch, uint8_t type, fb_ref_t body)
{
	rw_Message_start(b);
	rw_Message_add_dispatch_id(b, dispatch);
	rw_Message_add_body(b, type, body);
	return rw_Message_finish(b, rw_Message_end(b));
}

static ssize_t build_exec(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t a[3] = { fb_create_string(&b, "python3"), fb_create_string(&b, "-c"),
			  fb_create_string(&b, "print('h\u00e9llo \"q\"\\n')") };
	fb_ref_t argv = fb_create_vec_ref(&b, a, 3);
	static const uint8_t in[] = { 'i', 'n', 0, 0xff, '\n' };
	fb_ref_t stdin_ = fb_create_vec_u8(&b, in, sizeof(in));
	fb_ref_t env[2];
	for (int i = 0; i < 2; i++) {
		fb_ref_t n = fb_create_string(&b, i ? "LANG" : "PATH");
		fb_ref_t v = fb_create_string(&b, i ? "C.UTF-8" : "/usr/bin:/bin");
		rw_EnvVar_start(&b);
		rw_EnvVar_add_name(&b, n);
		rw_EnvVar_add_value(&b, v);
		env[i] = rw_EnvVar_end(&b);
	}
	fb_ref_t envv = fb_create_vec_ref(&b, env, 2);
	fb_ref_t cwd = fb_create_string(&b, "src/pkg");
	rw_Exec_start(&b);
	rw_Exec_add_sandbox(&b, 0x00c0ffee00000001ull);
	rw_Exec_add_argv(&b, argv);
	rw_Exec_add_stdin(&b, stdin_);
	rw_Exec_add_env(&b, envv);
	rw_Exec_add_cwd(&b, cwd);
	rw_Exec_add_timeout_ms(&b, 30000);
	rw_Exec_add_output_cap(&b, 65536);
	return message(&b, 0, rw_Body_Request, request(&b, 1, rw_Action_Exec, rw_Exec_end(&b)));
}

static ssize_t build_exec_shell(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t sh = fb_create_string(&b, "grep -c ok out.txt | tee n.txt");
	rw_Exec_start(&b);
	rw_Exec_add_sandbox(&b, 7);
	rw_Exec_add_shell(&b, sh);
	return message(&b, 42, rw_Body_Request, request(&b, 2, rw_Action_Exec, rw_Exec_end(&b)));
}

static ssize_t build_open(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t p = fb_create_string(&b, "default");
	fb_ref_t g = fb_create_string(&b, "grpo-17");
	rw_Open_start(&b);
	rw_Open_add_profile(&b, p);
	rw_Open_add_group(&b, g);
	rw_Open_add_lease_ms(&b, 60000);
	return message(&b, 0, rw_Body_Request, request(&b, 3, rw_Action_Open, rw_Open_end(&b)));
}

static ssize_t build_put(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t path = fb_create_string(&b, "main.py");
	static const uint8_t data[] = "print(6 * 7)\n";
	fb_ref_t d = fb_create_vec_u8(&b, data, sizeof(data) - 1);
	rw_PutFile_start(&b);
	rw_PutFile_add_sandbox(&b, 7);
	rw_PutFile_add_path(&b, path);
	rw_PutFile_add_data(&b, d);
	rw_PutFile_add_mode(&b, 0755);
	return message(&b, 0, rw_Body_Request, request(&b, 4, rw_Action_PutFile, rw_PutFile_end(&b)));
}

static ssize_t build_get(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t path = fb_create_string(&b, "out/result.json");
	rw_GetFile_start(&b);
	rw_GetFile_add_sandbox(&b, 7);
	rw_GetFile_add_path(&b, path);
	rw_GetFile_add_max_bytes(&b, 1 << 20);
	return message(&b, 0, rw_Body_Request, request(&b, 5, rw_Action_GetFile, rw_GetFile_end(&b)));
}

static ssize_t build_close(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Close_start(&b);
	rw_Close_add_sandbox(&b, 7);
	return message(&b, 0, rw_Body_Request, request(&b, 6, rw_Action_Close, rw_Close_end(&b)));
}

static ssize_t build_fork(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Fork_start(&b);
	rw_Fork_add_sandbox(&b, 7);
	rw_Fork_add_count(&b, 4);
	return message(&b, 0, rw_Body_Request, request(&b, 7, rw_Action_Fork, rw_Fork_end(&b)));
}

static ssize_t completion(struct fb_builder *b, uint64_t id, uint16_t status, bool infra, const char *msg,
			  uint8_t rtype, fb_ref_t result)
{
	fb_ref_t m = msg ? fb_create_string(b, msg) : 0;
	rw_Completion_start(b);
	rw_Completion_add_request_id(b, id);
	rw_Completion_add_status(b, status);
	rw_Completion_add_infra_failed(b, infra);
	rw_Completion_add_message(b, m);
	rw_Completion_add_result(b, rtype, result);
	return message(b, 0, rw_Body_Completion, rw_Completion_end(b));
}

static ssize_t build_exec_result(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	static const uint8_t out[] = { 'o', 'k', '\n', 0, 0xc3, 0x28, 0x80 };
	fb_ref_t so = fb_create_vec_u8(&b, out, sizeof(out));
	fb_ref_t se = fb_create_vec_u8(&b, "warn\n", 5);
	rw_ExecResult_start(&b);
	rw_ExecResult_add_exit_code(&b, 3);
	rw_ExecResult_add_stdout(&b, so);
	rw_ExecResult_add_stderr(&b, se);
	rw_ExecResult_add_stdout_truncated(&b, true);
	rw_ExecResult_add_wall_us(&b, 1500);
	rw_ExecResult_add_cpu_us(&b, 900);
	rw_ExecResult_add_peak_memory_kib(&b, 2048);
	fb_ref_t r = rw_ExecResult_end(&b);
	return completion(&b, 1, rw_Status_OK, false, NULL, rw_Result_ExecResult, r);
}

static ssize_t build_exec_signalled(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_ExecResult_start(&b);
	rw_ExecResult_add_exit_code(&b, -1);
	rw_ExecResult_add_signal(&b, 9);
	rw_ExecResult_add_stderr_truncated(&b, true);
	fb_ref_t r = rw_ExecResult_end(&b);
	return completion(&b, 8, rw_Status_TIMEOUT, false, "wall-clock timeout after 30000 ms",
			  rw_Result_ExecResult, r);
}

static ssize_t build_opened(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Opened_start(&b);
	rw_Opened_add_sandbox(&b, 0xfedcba9876543210ull);
	fb_ref_t r = rw_Opened_end(&b);
	return completion(&b, 3, rw_Status_OK, false, NULL, rw_Result_Opened, r);
}

static ssize_t build_file_data(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t d = fb_create_vec_u8(&b, "{\"score\": 1}", 12);
	rw_FileData_start(&b);
	rw_FileData_add_data(&b, d);
	rw_FileData_add_truncated(&b, true);
	fb_ref_t r = rw_FileData_end(&b);
	return completion(&b, 5, rw_Status_OK, false, NULL, rw_Result_FileData, r);
}

static ssize_t build_closed(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Closed_start(&b);
	fb_ref_t r = rw_Closed_end(&b);
	return completion(&b, 6, rw_Status_OK, false, NULL, rw_Result_Closed, r);
}

static ssize_t build_forked(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	static const uint64_t ids[] = { 11, 12, 0xffffffffffffffffull };
	fb_ref_t v = fb_create_vec_u64(&b, ids, 3);
	rw_Forked_start(&b);
	rw_Forked_add_sandboxes(&b, v);
	fb_ref_t r = rw_Forked_end(&b);
	return completion(&b, 7, rw_Status_OK, false, NULL, rw_Result_Forked, r);
}

static ssize_t build_lost(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	return completion(&b, 9, rw_Status_SANDBOX_LOST, true, "pool tcp://10.0.0.7:5555 stopped answering",
			  0, 0);
}

static fb_ref_t capacity(struct fb_builder *b)
{
	fb_ref_t pc[2];
	for (int i = 0; i < 2; i++) {
		fb_ref_t name = fb_create_string(b, i ? "noop" : "default");
		rw_ProfileCapacity_start(b);
		rw_ProfileCapacity_add_profile(b, name);
		rw_ProfileCapacity_add_total(b, i ? 100000 : 512);
		rw_ProfileCapacity_add_free(b, i ? 99999 : 500);
		rw_ProfileCapacity_add_warm(b, i ? 0 : 8);
		rw_ProfileCapacity_add_noop(b, i != 0);
		pc[i] = rw_ProfileCapacity_end(b);
	}
	return fb_create_vec_ref(b, pc, 2);
}

static ssize_t build_pool_hello(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t caps = capacity(&b);
	fb_ref_t id = fb_create_string(&b, "pool-3.rollout-pool:5555");
	fb_ref_t ver = fb_create_string(&b, "0.1.0");
	rw_PoolHello_start(&b);
	rw_PoolHello_add_identity(&b, id);
	rw_PoolHello_add_version(&b, ver);
	rw_PoolHello_add_schema_version(&b, rw_SchemaVersion_Current);
	rw_PoolHello_add_boot_id(&b, 0x1122334455667788ull);
	rw_PoolHello_add_capacity(&b, caps);
	rw_PoolHello_add_max_inflight(&b, 4096);
	return message(&b, 0, rw_Body_PoolHello, rw_PoolHello_end(&b));
}

static ssize_t build_coordinator_hello(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t id = fb_create_string(&b, "gpu-node-12/shard-3");
	fb_ref_t ver = fb_create_string(&b, "0.1.0");
	rw_CoordinatorHello_start(&b);
	rw_CoordinatorHello_add_identity(&b, id);
	rw_CoordinatorHello_add_version(&b, ver);
	rw_CoordinatorHello_add_schema_version(&b, rw_SchemaVersion_Current);
	rw_CoordinatorHello_add_lease_ms(&b, 10000);
	return message(&b, 0, rw_Body_CoordinatorHello, rw_CoordinatorHello_end(&b));
}

static ssize_t build_heartbeat(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Heartbeat_start(&b);
	rw_Heartbeat_add_seq(&b, 1000001);
	rw_Heartbeat_add_sent_ns(&b, 987654321098765ull);
	return message(&b, 0, rw_Body_Heartbeat, rw_Heartbeat_end(&b));
}

static ssize_t build_capacity_update(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	fb_ref_t caps = capacity(&b);
	rw_CapacityUpdate_start(&b);
	rw_CapacityUpdate_add_capacity(&b, caps);
	return message(&b, 0, rw_Body_CapacityUpdate, rw_CapacityUpdate_end(&b));
}

static ssize_t build_cancel(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Cancel_start(&b);
	rw_Cancel_add_target_dispatch_id(&b, 0x300000000000002aull);
	return message(&b, 0x3000000000000031ull, rw_Body_Cancel, rw_Cancel_end(&b));
}

static ssize_t build_version_only(void *buf, size_t cap)
{
	struct fb_builder b;
	fb_builder_init(&b, buf, cap);
	rw_Message_start(&b);
	rw_Message_add_schema_version(&b, 2);
	return rw_Message_finish(&b, rw_Message_end(&b));
}

const struct wt_message wt_catalog[] = {
	{ "exec", build_exec },
	{ "exec_shell", build_exec_shell },
	{ "open", build_open },
	{ "put_file", build_put },
	{ "get_file", build_get },
	{ "close", build_close },
	{ "fork", build_fork },
	{ "exec_result", build_exec_result },
	{ "exec_signalled", build_exec_signalled },
	{ "opened", build_opened },
	{ "file_data", build_file_data },
	{ "closed", build_closed },
	{ "forked", build_forked },
	{ "sandbox_lost", build_lost },
	{ "pool_hello", build_pool_hello },
	{ "coordinator_hello", build_coordinator_hello },
	{ "heartbeat", build_heartbeat },
	{ "capacity_update", build_capacity_update },
	{ "cancel", build_cancel },
	{ "version_only", build_version_only },
};
const size_t wt_catalog_len = sizeof(wt_catalog) / sizeof(wt_catalog[0]);
