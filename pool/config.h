/* rollout-pool's configuration: the `pool:` section of a YAML file (rolloutd's section may
 * sit in the same file). Every key is one row of POOL_KEYS or POOL_PROFILE_KEYS in
 * config.c, with its default, range and doc; `rollout-pool --config-reference` prints them. */
#ifndef ROLLOUT_POOL_CONFIG_H
#define ROLLOUT_POOL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sandbox.h"

struct pool_profile_cfg {
	char *name;
	int type; /* enum sbx_type */
	char *root;
	char *image;
	uint32_t disk_mb;
	char *user, *workdir;
	char *hostname;
	uint32_t warm, max, workdir_mb, memory_mb, pids, cpu_percent;
	uint32_t timeout_ms, max_timeout_ms, output_cap, max_output_cap, nofile, file_mb;
	uint32_t uid_base, uid_count;
	char **env;
	unsigned env_count;
	int network; /* enum net_mode */
	char **egress;
	unsigned egress_count;
};

struct pool_cfg {
	char *identity;
	char *listen;  /* ZeroMQ endpoint the ROUTER binds */
	char *metrics; /* HOST:PORT of /metrics and /healthz; absent: none */
	char *cgroup;  /* name of the pool's parent cgroup */
	uint32_t lease_ms, max_inflight, result_cache_s, max_message_mb, create_timeout_ms;
	/* CURVE: this pool's secret key (Z85) and the coordinators' public keys it accepts.
	 * Absent: plain TCP (for one box or a trusted network). */
	char *curve_secret_key;
	char **curve_allowed;
	unsigned curve_allowed_count;
	char *egress_range; /* addresses of network: egress sandboxes */
	char *state_dir, *snapshot_dir;
	uint32_t snapshot_ttl_s, snapshot_budget_mb, snapshot_max_depth;
	struct pool_profile_cfg *profiles;
	unsigned profiles_count;
	/* Filled by pool_config_load, not keys: */
	char *source; /* the file's absolute path (NULL: it has none), masked inside every sandbox */
	void *_file;  /* the parsed document, for pool_config_free */
};

/* Loads and checks path. On error returns -EINVAL (or -errno) and writes a message naming
 * the file (and line and key where known) into err. Refuses a file that holds
 * curve_secret_key and that users other than its owner can read. */
int pool_config_load(const char *path, struct pool_cfg **out, char *err, size_t errsz);
void pool_config_free(struct pool_cfg *c);
/* Every key of both tables as Markdown (`rollout-pool --config-reference`). */
void pool_config_reference(FILE *f);
/* The tables themselves (tests check the reference and the defaults against them). */
struct cfg_key;
void pool_config_tables(const struct cfg_key **pool, size_t *npool, const struct cfg_key **profile,
			size_t *nprofile);
void pool_profile_to_sbx(const struct pool_profile_cfg *c, struct sbx_profile *p);
/* 0 when only the owner of path can read it (file mode, or a directory above it that
 * lets nobody else through); -EACCES with err otherwise. */
int pool_config_check_private(const char *path, char *err, size_t errsz);

#endif
