/* rollout-pool's YAML configuration: one libcyaml schema (the tables below), defaults for
 * what is left out, then range checks. Errors name the file and, where libcyaml knows
 * them, the line and the key. */
#include "config.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *errbuf;
static size_t errcap, errlen;

static void cfg_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	(void)ctx;
	if (level < CYAML_LOG_ERROR || !errbuf || errlen + 1 >= errcap)
		return;
	int n = vsnprintf(errbuf + errlen, errcap - errlen, fmt, args);
	if (n > 0)
		errlen += (size_t)n < errcap - errlen ? (size_t)n : errcap - errlen - 1;
}

static const cyaml_strval_t type_names[] = { { "isolated", SBX_ISOLATED }, { "noop", SBX_NOOP } };

static const cyaml_schema_value_t string_ptr = { CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0,
								    CYAML_UNLIMITED) };

static const cyaml_schema_field_t profile_fields[] = {
	CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, struct pool_profile_cfg, name, 1, 64),
	CYAML_FIELD_ENUM("type", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, type, type_names, 2),
	CYAML_FIELD_STRING_PTR("root", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_profile_cfg,
			       root, 1, 4096),
	CYAML_FIELD_STRING_PTR("hostname", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_profile_cfg,
			       hostname, 1, 64),
	CYAML_FIELD_UINT("warm", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, warm),
	CYAML_FIELD_UINT("max", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, max),
	CYAML_FIELD_UINT("workdir_mb", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, workdir_mb),
	CYAML_FIELD_UINT("memory_mb", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, memory_mb),
	CYAML_FIELD_UINT("pids", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, pids),
	CYAML_FIELD_UINT("cpu_percent", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, cpu_percent),
	CYAML_FIELD_UINT("timeout_ms", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, timeout_ms),
	CYAML_FIELD_UINT("max_timeout_ms", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, max_timeout_ms),
	CYAML_FIELD_UINT("output_cap", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, output_cap),
	CYAML_FIELD_UINT("max_output_cap", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, max_output_cap),
	CYAML_FIELD_UINT("nofile", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, nofile),
	CYAML_FIELD_UINT("file_mb", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, file_mb),
	CYAML_FIELD_UINT("uid_base", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, uid_base),
	CYAML_FIELD_UINT("uid_count", CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, uid_count),
	CYAML_FIELD_SEQUENCE("env", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_profile_cfg, env,
			     &string_ptr, 0, SBX_MAX_ENV - 1),
	CYAML_FIELD_END
};

static const cyaml_schema_value_t profile_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct pool_profile_cfg, profile_fields),
};

static const cyaml_schema_field_t pool_fields[] = {
	CYAML_FIELD_STRING_PTR("identity", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg,
			       identity, 1, 128),
	CYAML_FIELD_STRING_PTR("listen", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg, listen, 1,
			       256),
	CYAML_FIELD_STRING_PTR("metrics", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg, metrics,
			       1, 256),
	CYAML_FIELD_STRING_PTR("cgroup", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg, cgroup, 1,
			       64),
	CYAML_FIELD_UINT("lease_ms", CYAML_FLAG_OPTIONAL, struct pool_cfg, lease_ms),
	CYAML_FIELD_UINT("max_inflight", CYAML_FLAG_OPTIONAL, struct pool_cfg, max_inflight),
	CYAML_FIELD_UINT("result_cache_s", CYAML_FLAG_OPTIONAL, struct pool_cfg, result_cache_s),
	CYAML_FIELD_UINT("max_message_mb", CYAML_FLAG_OPTIONAL, struct pool_cfg, max_message_mb),
	CYAML_FIELD_STRING_PTR("curve_secret_key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg,
			       curve_secret_key, 40, 40),
	CYAML_FIELD_SEQUENCE("curve_allowed", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct pool_cfg,
			     curve_allowed, &string_ptr, 0, 4096),
	CYAML_FIELD_SEQUENCE("profiles", CYAML_FLAG_POINTER, struct pool_cfg, profiles, &profile_schema, 1,
			     64),
	CYAML_FIELD_END
};

/* The top level holds `pool:`; rolloutd's keys may live in the same file under their own key. */
struct pool_file {
	struct pool_cfg *pool;
};

static const cyaml_schema_field_t file_fields[] = {
	CYAML_FIELD_MAPPING_PTR("pool", CYAML_FLAG_POINTER, struct pool_file, pool, pool_fields),
	CYAML_FIELD_IGNORE("rolloutd", CYAML_FLAG_OPTIONAL), CYAML_FIELD_IGNORE("gateway", CYAML_FLAG_OPTIONAL), CYAML_FIELD_END
};

static const cyaml_schema_value_t file_schema = {
	CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct pool_file, file_fields),
};

static const cyaml_config_t cyaml_cfg = {
	.log_fn = cfg_log,
	.mem_fn = cyaml_mem,
	.log_level = CYAML_LOG_ERROR,
	.flags = CYAML_CFG_DEFAULT,
};

static int fail(char *err, size_t cap, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, cap, "%s: ", path);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < cap)
		vsnprintf(err + n, cap - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* String defaults are heap copies: cyaml_free releases every string field. */
#define DEFAULT_STR(field, v)                \
	do {                                 \
		if (!(field))                \
			(field) = strdup(v); \
	} while (0)
#define DEFAULT(field, v)              \
	do {                           \
		if (!(field))          \
			(field) = (v); \
	} while (0)

static int check_profile(struct pool_profile_cfg *p, size_t i, const char *path, char *err, size_t cap)
{
	DEFAULT_STR(p->root, "/");
	DEFAULT_STR(p->hostname, "sandbox");
	DEFAULT(p->max, 256);
	DEFAULT(p->workdir_mb, 64);
	DEFAULT(p->memory_mb, 512);
	DEFAULT(p->pids, 128);
	DEFAULT(p->timeout_ms, 30000);
	DEFAULT(p->max_timeout_ms, 600000);
	DEFAULT(p->output_cap, 65536);
	DEFAULT(p->max_output_cap, 4u << 20);
	DEFAULT(p->nofile, 256);
	DEFAULT(p->file_mb, 64);
	DEFAULT(p->uid_base, 200000);
	DEFAULT(p->uid_count, 50000);
	if (p->warm > p->max)
		return fail(err, cap, path, "profiles[%zu] (%s): warm %u is above max %u", i, p->name,
			    p->warm, p->max);
	if (p->timeout_ms > p->max_timeout_ms)
		return fail(err, cap, path, "profiles[%zu] (%s): timeout_ms above max_timeout_ms", i,
			    p->name);
	if (p->output_cap > p->max_output_cap || p->max_output_cap > (64u << 20) - 65536)
		return fail(err, cap, path,
			    "profiles[%zu] (%s): output_cap must be <= max_output_cap <= 63 MiB", i, p->name);
	if (p->uid_base < 1000 || (uint64_t)p->uid_base + p->uid_count > 0xfffffffeull)
		return fail(err, cap, path, "profiles[%zu] (%s): uid_base must be an unprivileged range", i,
			    p->name);
	if (p->cpu_percent > 100000 || p->nofile < 16 || p->pids > 1000000)
		return fail(err, cap, path, "profiles[%zu] (%s): limit out of range", i, p->name);
	struct stat st;
	if (p->type == SBX_ISOLATED && (stat(p->root, &st) < 0 || !S_ISDIR(st.st_mode)))
		return fail(err, cap, path, "profiles[%zu] (%s): root '%s' is not a directory", i, p->name,
			    p->root);
	for (size_t e = 0; e < p->env_count; e++)
		if (!strchr(p->env[e], '=') || p->env[e][0] == '=')
			return fail(err, cap, path, "profiles[%zu] (%s): env entry '%s' is not NAME=value", i,
				    p->name, p->env[e]);
	return 0;
}

int pool_config_load(const char *path, struct pool_cfg **out, char *err, size_t errsz)
{
	struct stat st;
	*out = NULL;
	if (stat(path, &st) < 0)
		return fail(err, errsz, path, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, errsz, path, "not a regular file");
	if (st.st_size == 0)
		return fail(err, errsz, path, "empty file");
	char logbuf[1024] = { 0 };
	errbuf = logbuf;
	errcap = sizeof(logbuf);
	errlen = 0;
	struct pool_file *f = NULL;
	cyaml_err_t rc = cyaml_load_file(path, &cyaml_cfg, &file_schema, (cyaml_data_t **)&f, NULL);
	errbuf = NULL;
	if (rc != CYAML_OK) {
		for (size_t i = strlen(logbuf); i > 0 && logbuf[i - 1] == '\n'; i--)
			logbuf[i - 1] = 0;
		for (char *c = logbuf; *c; c++)
			if (*c == '\n')
				*c = ';';
		return fail(err, errsz, path, "%s%s%s", cyaml_strerror(rc), logbuf[0] ? ": " : "", logbuf);
	}
	if (!f || !f->pool) { /* a file of comments only is an empty document */
		if (f)
			cyaml_free(&cyaml_cfg, &file_schema, f, 0);
		return fail(err, errsz, path, "no pool: section");
	}
	struct pool_cfg *c = f->pool;
	DEFAULT_STR(c->identity, "rollout-pool");
	DEFAULT_STR(c->listen, "tcp://127.0.0.1:7710");
	DEFAULT_STR(c->cgroup, "rollout-pool");
	DEFAULT(c->lease_ms, 10000);
	DEFAULT(c->max_inflight, 4096);
	DEFAULT(c->result_cache_s, 60);
	DEFAULT(c->max_message_mb, 64);
	int r = 0;
	for (size_t i = 0; i < c->profiles_count && !r; i++) {
		r = check_profile(&c->profiles[i], i, path, err, errsz);
		for (size_t j = 0; j < i && !r; j++)
			if (strcmp(c->profiles[i].name, c->profiles[j].name) == 0)
				r = fail(err, errsz, path, "profiles[%zu]: duplicate profile name '%s'", i,
					 c->profiles[i].name);
	}
	if (!r && c->curve_allowed_count && !c->curve_secret_key)
		r = fail(err, errsz, path, "pool.curve_allowed needs pool.curve_secret_key");
	if (!r && c->curve_secret_key && !c->curve_allowed_count)
		r = fail(err, errsz, path,
			 "pool.curve_secret_key without pool.curve_allowed: CURVE needs an allowlist of "
			 "coordinator keys");
	for (unsigned i = 0; !r && i < c->curve_allowed_count; i++)
		if (strlen(c->curve_allowed[i]) != 40)
			r = fail(err, errsz, path, "pool.curve_allowed[%u] is not a 40-character Z85 key", i);
	if (!r && strncmp(c->listen, "tcp://", 6) && strncmp(c->listen, "ipc://", 6))
		r = fail(err, errsz, path, "pool.listen '%s' must be tcp://HOST:PORT or ipc://PATH",
			 c->listen);
	if (r) {
		cyaml_free(&cyaml_cfg, &file_schema, f, 0);
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
	f->pool = c;
	cyaml_free(&cyaml_cfg, &file_schema, f, 0);
}

void pool_profile_to_sbx(const struct pool_profile_cfg *c, struct sbx_profile *p)
{
	memset(p, 0, sizeof(*p));
	p->name = c->name;
	p->type = (enum sbx_type)c->type;
	p->root = c->root;
	p->hostname = c->hostname;
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
