/* rollout_abi_dump: prints, as one JSON object, the layout of every public struct of
 * rollout/rollout.h (sizeof, offsetof and size of each field) and the project error codes
 * of rollout/error.h. The Python binding's test compares its ctypes mirrors with it, so a
 * header change the binding missed fails a test instead of corrupting memory. Built, never
 * installed. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "rollout/rollout.h"

struct field {
	const char *type, *name;
	size_t type_size, off, size;
};

#define F(t, f)                                                                             \
	{                                                                                   \
#t, #f, sizeof(struct t), offsetof(struct t, f), sizeof(((struct t *)0)->f) \
	}

/* Every field of every public struct, in declaration order (a field left out here still
 * shows up as a size difference). */
static const struct field fields[] = {
	F(rollout_connect_opts, socket_path),
	F(rollout_connect_opts, gpu),
	F(rollout_connect_opts, name),
	F(rollout_connect_opts, sq_bytes),
	F(rollout_connect_opts, cq_bytes),
	F(rollout_connect_opts, timeout_ms),
	F(rollout_env, name),
	F(rollout_env, value),
	F(rollout_exec, argv),
	F(rollout_exec, shell),
	F(rollout_exec, stdin_data),
	F(rollout_exec, stdin_len),
	F(rollout_exec, env),
	F(rollout_exec, env_len),
	F(rollout_exec, cwd),
	F(rollout_exec, timeout_ms),
	F(rollout_exec, output_cap),
	F(rollout_exec, flags),
	F(rollout_open_opts, profile),
	F(rollout_open_opts, snapshot),
	F(rollout_open_opts, group),
	F(rollout_open_opts, lease_ms),
	F(rollout_open_opts, checkpoint_every),
	F(rollout_completion, request_id),
	F(rollout_completion, status),
	F(rollout_completion, infra_failed),
	F(rollout_completion, message),
	F(rollout_completion, sandbox),
	F(rollout_completion, exit_code),
	F(rollout_completion, signal),
	F(rollout_completion, stdout_data),
	F(rollout_completion, stderr_data),
	F(rollout_completion, file_data),
	F(rollout_completion, stdout_len),
	F(rollout_completion, stderr_len),
	F(rollout_completion, file_len),
	F(rollout_completion, stdout_truncated),
	F(rollout_completion, stderr_truncated),
	F(rollout_completion, file_truncated),
	F(rollout_completion, wall_us),
	F(rollout_completion, cpu_us),
	F(rollout_completion, peak_memory_kib),
	F(rollout_completion, partial),
	F(rollout_completion, stdout_offset),
	F(rollout_completion, stderr_offset),
	F(rollout_completion, snapshot),
	F(rollout_completion, snapshot_bytes),
	F(rollout_completion, snapshot_files),
	F(rollout_completion, frozen_us),
	F(rollout_completion, checkpoint),
	F(rollout_completion, checkpoint_request_id),
};

int main(void)
{
	size_t n = sizeof(fields) / sizeof(fields[0]);
	printf("{\"structs\": {");
	for (size_t i = 0; i < n; i++) {
		const struct field *f = &fields[i];
		bool first = i == 0 || strcmp(fields[i - 1].type, f->type) != 0;
		if (first)
			printf("%s\"%s\": {\"size\": %zu, \"fields\": {", i ? "}}, " : "", f->type,
			       f->type_size);
		printf("%s\"%s\": [%zu, %zu]", first ? "" : ", ", f->name, f->off, f->size);
	}
	printf("}}}, \"errors\": {");
	const char *sep = "";
#define ROLLOUT__ERR_JSON(name, value, msg)        \
	printf("%s\"%s\": %d", sep, #name, value); \
	sep = ", ";
	ROLLOUT_ERRNO_MAP(ROLLOUT__ERR_JSON)
#undef ROLLOUT__ERR_JSON
	printf("}}\n");
	return 0;
}
