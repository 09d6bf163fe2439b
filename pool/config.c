/* rollout-pool's YAML configuration as two tables (common/cfg.h): one row per key with its
 * default, range and doc. From them come the libcyaml schema, the defaults and range
 * checks, and --config-reference; the checks a range cannot say follow by hand. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfg.h"
#include "image.h"

static const cyaml_strval_t type_names[] = { { "isolated", SBX_ISOLATED }, { "noop", SBX_NOOP } };
static const cyaml_strval_t network_names[] = { { "none", NET_NONE }, { "egress", NET_EGRESS } };

/* X(S, TYPE, name, default, lo, hi, extra, doc) */
#define POOL_PROFILE_KEYS(X)                                                                                 \
	X(struct pool_profile_cfg, STR, name, NULL, 1, 64, NULL, "what Open.profile names (required)")       \
	X(struct pool_profile_cfg, ENUM, type, "isolated", SBX_ISOLATED, SBX_NOOP, type_names,               \
	  "isolated: a full sandbox; noop: exec answers OK at once without a process")                       \
	X(struct pool_profile_cfg, STR, root, SBX_ROOT_SYSTEM, 1, 4096, NULL,                                \
	  "read-only root: system (the host's /usr, /lib*, /etc on an empty root), / or an image dir")       \
	X(struct pool_profile_cfg, STR, image, NULL, 1, 4096, NULL,                                          \
	  "an image as the root instead: oci:PATH[:TAG] (an OCI image layout) or an .erofs/.squashfs "       \
	  "file; each sandbox gets a writable overlay of it (docs/environments.md)")                         \
	X(struct pool_profile_cfg, U32, disk_mb, "1024", 1, 1048576, NULL,                                   \
	  "image profiles: what a sandbox may write to its root (tmpfs upper layer), MiB")                   \
	X(struct pool_profile_cfg, STR, user, NULL, 1, 64, NULL,                                             \
	  "image profiles: the image user (name or uid) whose files the sandbox owns (default: the "         \
	  "image's User, else root)")                                                                        \
	X(struct pool_profile_cfg, STR, workdir, NULL, 1, 4096, NULL,                                        \
	  "image profiles: the working directory (default: the image's WorkingDir, else /tmp)")              \
	X(struct pool_profile_cfg, STR, hostname, "sandbox", 1, 64, NULL, "hostname inside the sandbox")     \
	X(struct pool_profile_cfg, U32, warm, NULL, 0, 1000000, NULL, "sandboxes kept ready to claim")       \
	X(struct pool_profile_cfg, U32, max, "256", 1, 1000000, NULL, "sandboxes of this profile at most")   \
	X(struct pool_profile_cfg, U32, workdir_mb, "64", 1, 1048576, NULL, "tmpfs work area on /tmp, MiB")  \
	X(struct pool_profile_cfg, U32, memory_mb, "512", 1, 16777216, NULL, "cgroup memory limit, MiB")     \
	X(struct pool_profile_cfg, U32, pids, "128", 1, 1000000, NULL, "cgroup pids limit and RLIMIT_NPROC") \
	X(struct pool_profile_cfg, U32, cpu_percent, NULL, 0, 100000, NULL,                                  \
	  "cgroup cpu quota in percent of one cpu (0: none)")                                                \
	X(struct pool_profile_cfg, U32, timeout_ms, "30000", 1, UINT32_MAX, NULL, "default exec timeout")    \
	X(struct pool_profile_cfg, U32, max_timeout_ms, "600000", 1, UINT32_MAX, NULL,                       \
	  "largest timeout a request may ask for")                                                           \
	X(struct pool_profile_cfg, U32, output_cap, "65536", 1, UINT32_MAX, NULL,                            \
	  "default bytes kept per stream")                                                                   \
	X(struct pool_profile_cfg, U32, max_output_cap, "4194304", 1, (64u << 20) - 65536, NULL,             \
	  "largest output cap a request may ask for")                                                        \
	X(struct pool_profile_cfg, U32, nofile, "256", 16, 1048576, NULL, "RLIMIT_NOFILE")                   \
	X(struct pool_profile_cfg, U32, file_mb, "64", 1, 1048576, NULL, "RLIMIT_FSIZE, MiB")                \
	X(struct pool_profile_cfg, U32, uid_base, "200000", 1000, 0xfffffffeu, NULL,                         \
	  "sandboxes run as host uids uid_base .. uid_base+uid_count-1 (an unprivileged range)")             \
	X(struct pool_profile_cfg, U32, uid_count, "50000", 1, 0xfffffffeu, NULL, "size of the uid range")   \
	X(struct pool_profile_cfg, SEQ, env, NULL, 0, SBX_MAX_ENV - 1, &cfg_string_schema,                   \
	  "NAME=value entries (default: PATH, HOME=/tmp, LANG=C.UTF-8)")                                     \
	X(struct pool_profile_cfg, ENUM, network, "none", NET_NONE, NET_EGRESS, network_names,               \
	  "none: loopback only; egress: a routed veth reaching only the egress allowlist (docs/network.md)") \
	X(struct pool_profile_cfg, SEQ, egress, NULL, 0, 4096, &cfg_string_schema,                           \
	  "network: egress allowlist, entries CIDR[:PORT] or HOST:PORT, PORT N or LO-HI, optional /tcp "     \
	  "or /udp (default both); hosts are resolved by the pool at start")

static const struct cfg_key profile_keys[] = { POOL_PROFILE_KEYS(CFG_KEY_ROW) };
static const cyaml_schema_field_t profile_fields[] = { POOL_PROFILE_KEYS(CFG_CYAML_FIELD) CYAML_FIELD_END };
static const cyaml_schema_value_t profile_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct pool_profile_cfg, profile_fields),
};

#define POOL_KEYS(X)                                                                                        \
	X(struct pool_cfg, STR, identity, "rollout-pool", 1, 128, NULL,                                     \
	  "name reported in PoolHello and metrics")                                                         \
	X(struct pool_cfg, STR, listen, "tcp://127.0.0.1:7710", 1, 256, NULL,                               \
	  "ZeroMQ ROUTER endpoint coordinators connect to (tcp:// or ipc://)")                              \
	X(struct pool_cfg, STR, metrics, NULL, 1, 256, NULL,                                                \
	  "HOST:PORT of /metrics and /healthz; absent: none")                                               \
	X(struct pool_cfg, STR, cgroup, "rollout-pool", 1, 64, NULL, "parent cgroup (v2 unified, or v1)")   \
	X(struct pool_cfg, U32, lease_ms, "10000", 100, 86400000, NULL,                                     \
	  "lease of a coordinator that names none: silent this long, it loses its sandboxes")               \
	X(struct pool_cfg, U32, max_inflight, "4096", 1, 1048576, NULL,                                     \
	  "credits offered to each coordinator")                                                            \
	X(struct pool_cfg, U32, result_cache_s, "60", 1, 86400, NULL,                                       \
	  "answers kept to serve a repeated dispatch")                                                      \
	X(struct pool_cfg, U32, max_message_mb, "64", 1, 1024, NULL,                                        \
	  "larger ZeroMQ messages disconnect the peer")                                                     \
	X(struct pool_cfg, U32, create_timeout_ms, "10000", 100, 600000, NULL,                              \
	  "a sandbox creation not answered by the zygote within this fails (and is retried)")               \
	X(struct pool_cfg, STR, curve_secret_key, NULL, 40, 40, NULL,                                       \
	  "CURVE: this pool's secret key (Z85); the file must be readable by its owner only")               \
	X(struct pool_cfg, SEQ, curve_allowed, NULL, 0, 4096, &cfg_string_schema,                           \
	  "CURVE: the coordinators' public keys accepted")                                                  \
	X(struct pool_cfg, STR, egress_range, "10.250.0.0/16", 9, 18, NULL,                                 \
	  "private IPv4 range of network: egress sandboxes, a /31 each; disjoint per pool of a host")       \
	X(struct pool_cfg, STR, state_dir, "/var/lib/rollout-pool", 1, 1024, NULL,                          \
	  "the pool's own files: the image layer store (layers/), image mounts (mnt/)")                     \
	X(struct pool_cfg, STR, snapshot_dir, NULL, 1, 1024, NULL,                                          \
	  "the snapshot store (default STATE_DIR/snapshots); a shared path lets pools open each other's")   \
	X(struct pool_cfg, U32, snapshot_ttl_s, "86400", 1, UINT32_MAX, NULL,                               \
	  "a snapshot unused this long is removed")                                                         \
	X(struct pool_cfg, U32, snapshot_budget_mb, "10240", 1, UINT32_MAX, NULL,                           \
	  "the store's size at most: over it, the least recently used snapshots go first")                  \
	X(struct pool_cfg, U32, snapshot_max_depth, "8", 1, 64, NULL,                                       \
	  "snapshots of snapshots chain this deep at most; deeper, a snapshot is flattened into one layer") \
	X(struct pool_cfg, SEQ, profiles, NULL, 1, 64, &profile_schema, "environment profiles (see below)")

static const struct cfg_key pool_keys[] = { POOL_KEYS(CFG_KEY_ROW) };
static const cyaml_schema_field_t pool_fields[] = { POOL_KEYS(CFG_CYAML_FIELD) CYAML_FIELD_END };

/* The top level holds `pool:`; rolloutd's keys may live in the same file under their own key. */
struct pool_file {
	struct pool_cfg *pool;
};

static const cyaml_schema_field_t file_fields[] = {
	CYAML_FIELD_MAPPING_PTR("pool", CYAML_FLAG_POINTER, struct pool_file, pool, pool_fields),
	CYAML_FIELD_IGNORE("rolloutd", CYAML_FLAG_OPTIONAL),
	CYAML_FIELD_IGNORE("gateway", CYAML_FLAG_OPTIONAL), CYAML_FIELD_END
};

static const cyaml_schema_value_t file_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct pool_file, file_fields),
};

#define NKEYS(t) (sizeof(t) / sizeof((t)[0]))

void pool_config_tables(const struct cfg_key **pool, size_t *npool, const struct cfg_key **profile,
			size_t *nprofile)
{
	*pool = pool_keys;
	*npool = NKEYS(pool_keys);
	*profile = profile_keys;
	*nprofile = NKEYS(profile_keys);
}

void pool_config_reference(FILE *f)
{
	fprintf(f, "## pool\n\n");
	cfg_reference(f, "pool", pool_keys, NKEYS(pool_keys));
	fprintf(f, "\n## pool.profiles[]\n\n");
	cfg_reference(f, "pool.profiles[]", profile_keys, NKEYS(profile_keys));
}

static int check_profile(struct pool_profile_cfg *p, unsigned i, const char *path, char *err, size_t cap)
{
	char sec[64];
	snprintf(sec, sizeof(sec), "pool.profiles[%u]", i);
	if (!p->name)
		return cfg_fail(err, cap, path, "pool.profiles", i, "profiles[%u]: name is required", i);
	int rc = cfg_apply(p, profile_keys, NKEYS(profile_keys), path, sec, err, cap);
	if (rc)
		return rc;
	/* Messages name the entry by index and name: a name came from the file, it is short
	 * (64 at most) and is printed as the user wrote it. */
	if (p->warm > p->max)
		return cfg_fail(err, cap, path, "pool.profiles.warm", i,
				"profiles[%u] (%s): warm %u is above max %u", i, p->name, p->warm, p->max);
	if (p->timeout_ms > p->max_timeout_ms)
		return cfg_fail(err, cap, path, "pool.profiles.timeout_ms", i,
				"profiles[%u] (%s): timeout_ms above max_timeout_ms", i, p->name);
	if (p->output_cap > p->max_output_cap)
		return cfg_fail(err, cap, path, "pool.profiles.output_cap", i,
				"profiles[%u] (%s): output_cap must be <= max_output_cap <= 63 MiB", i,
				p->name);
	if ((uint64_t)p->uid_base + p->uid_count > 0xfffffffeull)
		return cfg_fail(err, cap, path, "pool.profiles.uid_base", i,
				"profiles[%u] (%s): uid_base must be an unprivileged range", i, p->name);
	struct stat st;
	if (p->image && !img_spec_is_image(p->image))
		return cfg_fail(
		    err, cap, path, "pool.profiles.image", i,
		    "profiles[%u] (%s): image '%s' is not oci:PATH[:TAG] or an .erofs/.squashfs file", i,
		    p->name, p->image);
	if (p->image && p->type == SBX_NOOP)
		return cfg_fail(err, cap, path, "pool.profiles.image", i,
				"profiles[%u] (%s): a noop profile has no root: drop image", i, p->name);
	if (!p->image && (p->user || p->workdir))
		return cfg_fail(err, cap, path, p->user ? "pool.profiles.user" : "pool.profiles.workdir", i,
				"profiles[%u] (%s): user and workdir need image", i, p->name);
	if (p->workdir && p->workdir[0] != '/')
		return cfg_fail(err, cap, path, "pool.profiles.workdir", i,
				"profiles[%u] (%s): workdir must be absolute", i, p->name);
	if (p->type == SBX_ISOLATED && !p->image && strcmp(p->root, SBX_ROOT_SYSTEM) != 0 &&
	    (stat(p->root, &st) < 0 || !S_ISDIR(st.st_mode)))
		return cfg_fail(err, cap, path, "pool.profiles.root", i,
				"profiles[%u] (%s): root '%s' is not a directory", i, p->name, p->root);
	if (p->egress_count && p->network != NET_EGRESS)
		return cfg_fail(err, cap, path, "pool.profiles.egress", i,
				"profiles[%u] (%s): egress needs network: egress", i, p->name);
	for (unsigned e = 0; e < p->egress_count; e++) {
		struct net_rule r;
		char host[256], why[200];
		if (net_parse_entry(p->egress[e], &r, host, sizeof(host), why, sizeof(why)))
			return cfg_fail(err, cap, path, "pool.profiles.egress", i,
					"profiles[%u] (%s): egress[%u]: %s", i, p->name, e, why);
	}
	for (size_t e = 0; e < p->env_count; e++)
		if (!strchr(p->env[e], '=') || p->env[e][0] == '=')
			return cfg_fail(err, cap, path, "pool.profiles.env", i,
					"profiles[%u] (%s): env entry '%s' is not NAME=value", i, p->name,
					p->env[e]);
	return 0;
}

int pool_config_check_private(const char *path, char *err, size_t errsz)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real) || stat(real, &st) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!(st.st_mode & 0044))
		return 0;
	/* Readable by group or others: private only if a directory above lets them through
	 * to nothing (no search permission for group and others). */
	for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
		*slash = 0;
		struct stat d;
		if (stat(real[0] ? real : "/", &d) == 0 && !(d.st_mode & 0011))
			return 0;
		if (!real[0])
			break;
	}
	snprintf(
	    err, errsz,
	    "%s: holds curve_secret_key but other users can read it (mode %04o): chmod 600 it (and keep it "
	    "out of sandboxes' reach)",
	    path, (unsigned)(st.st_mode & 07777));
	return -EACCES;
}

int pool_config_load(const char *path, struct pool_cfg **out, char *err, size_t errsz)
{
	*out = NULL;
	struct pool_file *f = NULL;
	struct pool_cfg *c = NULL;
	int r = cfg_load_section(path, &file_schema, offsetof(struct pool_file, pool), "pool", (void **)&f,
				 (void **)&c, err, errsz);
	if (r)
		return r;
	r = cfg_apply(c, pool_keys, NKEYS(pool_keys), path, "pool", err, errsz);
	for (unsigned i = 0; i < c->profiles_count && !r; i++) {
		r = check_profile(&c->profiles[i], i, path, err, errsz);
		for (unsigned j = 0; j < i && !r; j++)
			if (strcmp(c->profiles[i].name, c->profiles[j].name) == 0)
				r = cfg_fail(err, errsz, path, "pool.profiles.name", i,
					     "profiles[%u]: duplicate profile name '%s'", i,
					     c->profiles[i].name);
	}
	if (!r && c->curve_allowed_count && !c->curve_secret_key)
		r = cfg_fail(err, errsz, path, "pool.curve_allowed", 0,
			     "pool.curve_allowed needs pool.curve_secret_key");
	if (!r && c->curve_secret_key && !c->curve_allowed_count)
		r = cfg_fail(err, errsz, path, "pool.curve_secret_key", 0,
			     "pool.curve_secret_key without pool.curve_allowed: CURVE needs an allowlist of "
			     "coordinator keys");
	for (unsigned i = 0; !r && i < c->curve_allowed_count; i++)
		if (strlen(c->curve_allowed[i]) != 40)
			r = cfg_fail(err, errsz, path, "pool.curve_allowed", 0,
				     "pool.curve_allowed[%u] is not a 40-character Z85 key", i);
	if (!r && strncmp(c->listen, "tcp://", 6) && strncmp(c->listen, "ipc://", 6))
		r = cfg_fail(err, errsz, path, "pool.listen", 0,
			     "pool.listen '%s' must be tcp://HOST:PORT or ipc://PATH", c->listen);
	if (!r && c->curve_secret_key)
		r = pool_config_check_private(path, err, errsz);
	char why[200];
	uint32_t base;
	uint8_t prefix;
	if (!r && net_parse_range(c->egress_range, &base, &prefix, why, sizeof(why)))
		r = cfg_fail(err, errsz, path, "pool.egress_range", 0, "%s", why);
	/* The file's real path, hidden in sandboxes. A config without one (a memfd) has
	 * nothing a sandbox could open. */
	if (!r)
		c->source = realpath(path, NULL);
	if (r) {
		f->pool = c;
		cfg_free(&file_schema, f);
		return r;
	}
	f->pool = NULL;
	c->_file = f;
	*out = c;
	return 0;
}

void pool_config_free(struct pool_cfg *c)
{
	if (!c)
		return;
	struct pool_file *f = c->_file;
	free(c->source);
	c->source = NULL;
	f->pool = c;
	cfg_free(&file_schema, f);
}

void pool_profile_to_sbx(const struct pool_profile_cfg *c, struct sbx_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->name = c->name;
	p->type = (enum sbx_type)c->type;
	p->root = c->root;
	p->hostname = c->hostname;
	p->image = c->image;
	p->disk_mb = c->disk_mb;
	p->warm = c->warm;
	p->max = c->max;
	p->workdir_mb = c->workdir_mb;
	p->memory_mb = c->memory_mb;
	p->pids = c->pids;
	p->cpu_percent = c->cpu_percent;
	p->timeout_ms = c->timeout_ms;
	p->max_timeout_ms = c->max_timeout_ms;
	p->output_cap = c->output_cap;
	p->max_output_cap = c->max_output_cap;
	p->nofile = c->nofile;
	p->file_mb = c->file_mb;
	p->uid_base = c->uid_base;
	p->uid_count = c->uid_count;
	size_t n = 0;
	for (; n < c->env_count && n < SBX_MAX_ENV - 1; n++)
		p->env[n] = c->env[n];
	if (!c->env_count) {
		p->env[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
		p->env[n++] = "HOME=/tmp";
		p->env[n++] = "LANG=C.UTF-8";
	}
	p->env[n] = NULL;
}
