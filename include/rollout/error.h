/* rolloutd error codes: every function of the project returns 0 (or a count) on success
 * and a negative code on failure: -errno for system errors, or one of the project codes
 * below, which live in their own negative range so they never collide with errno.
 * Codes never change meaning and are never reused. */
#ifndef ROLLOUT_ERROR_H
#define ROLLOUT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ROLLOUT_API
#define ROLLOUT_API __attribute__((visibility("default")))
#endif

/* X(name, value, message). Values start at -1000, far below any errno. */
#define ROLLOUT_ERRNO_MAP(X)                                                       \
	X(E_VERIFY, -1000, "message failed FlatBuffers verification")              \
	X(E_ABI, -1001, "shared-memory ABI mismatch (magic, version or features)") \
	X(E_PEER_DEAD, -1002, "peer process is gone")                              \
	X(E_CORRUPT, -1003, "peer corrupted shared state; channel refused")        \
	X(E_CONFIG, -1004, "invalid configuration")                                \
	X(E_TOPOLOGY, -1005, "topology does not match the configuration")          \
	X(E_SCHEMA, -1006, "message of an unsupported schema version")             \
	X(E_TOO_BIG, -1007, "record larger than the maximum size")                 \
	X(E_PROTOCOL, -1008, "protocol violation by peer")                         \
	X(E_EPOCH, -1009, "record from a previous epoch of the peer")              \
	X(E_SHUTDOWN, -1010, "service is shutting down")                           \
	X(E_NOT_CONNECTED, -1011, "not connected to rolloutd")                     \
	X(E_STATUS, -1012, "request completed with a non-OK status")

enum rollout_errno {
#define ROLLOUT__ERR_ENUM(name, value, msg) ROLLOUT_##name = value,
	ROLLOUT_ERRNO_MAP(ROLLOUT__ERR_ENUM)
#undef ROLLOUT__ERR_ENUM
};

/* Text for any return code of the project (project codes and -errno). Never NULL;
 * the string is static. */
ROLLOUT_API const char *rollout_strerror(int err);
/* Symbolic name ("ROLLOUT_E_VERIFY", "ENOSPC", ...). Never NULL; static. */
ROLLOUT_API const char *rollout_err_name(int err);

#ifdef __cplusplus
}
#endif
#endif
