/* rolloutd's configuration: one libcyaml schema, defaults, range checks. */
#include "config.h"

#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char logbuf[1024];
static size_t loglen;

static void rd_log(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	(void)ctx;
	if (level < CYAML_LOG_ERROR || loglen + 1 >= sizeof(logbuf))
		return;
	int n = vsnprintf(logbuf + loglen, sizeof(logbuf) - loglen, fmt, args);
	if (n > 0)
		loglen = loglen + (size_t)n < sizeof(logbuf) ? loglen + (size_t)n : sizeof(logbuf) - 1;
}

static const cyaml_schema_field_t pool_fields[] = {
	CYAML_FIELD_STRING_PTR("endpoint", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_pool_cfg,
			       endpoint, 1, 256),
	CYAML_FIELD_STRING_PTR("dns", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_pool_cfg, dns, 1,
			       256),
	CYAML_FIELD_STRING_PTR("server_key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_pool_cfg,
			       server_key, 40, 40),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t pool_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct rd_pool_cfg,
								      pool_fields) };

static const cyaml_schema_field_t gpu_fields[] = {
	CYAML_FIELD_STRING_PTR("pci_bus_id", CYAML_FLAG_POINTER, struct rd_gpu_cfg, pci_bus_id, 7, 16),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t gpu_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct rd_gpu_cfg,
								     gpu_fields) };

static const cyaml_schema_field_t rd_fields[] = {
	CYAML_FIELD_STRING_PTR("socket", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg, socket, 1,
			       107),
	CYAML_FIELD_STRING_PTR("metrics", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg, metrics, 1,
			       64),
	CYAML_FIELD_STRING_PTR("identity", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg, identity,
			       1, 128),
	CYAML_FIELD_UINT("shards", CYAML_FLAG_OPTIONAL, struct rd_cfg, shards),
	CYAML_FIELD_UINT("ring_bytes", CYAML_FLAG_OPTIONAL, struct rd_cfg, ring_bytes),
	CYAML_FIELD_UINT("max_record", CYAML_FLAG_OPTIONAL, struct rd_cfg, max_record),
	CYAML_FIELD_UINT("lease_ms", CYAML_FLAG_OPTIONAL, struct rd_cfg, lease_ms),
	CYAML_FIELD_UINT("heartbeat_ms", CYAML_FLAG_OPTIONAL, struct rd_cfg, heartbeat_ms),
	CYAML_FIELD_UINT("pool_timeout_ms", CYAML_FLAG_OPTIONAL, struct rd_cfg, pool_timeout_ms),
	CYAML_FIELD_UINT("max_queue", CYAML_FLAG_OPTIONAL, struct rd_cfg, max_queue),
	CYAML_FIELD_UINT("drain_ms", CYAML_FLAG_OPTIONAL, struct rd_cfg, drain_ms),
	CYAML_FIELD_STRING_PTR("reserved_cpus", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg,
			       reserved_cpus, 1, 256),
	CYAML_FIELD_STRING_PTR("curve_public_key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg,
			       curve_public_key, 40, 40),
	CYAML_FIELD_STRING_PTR("curve_secret_key", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg,
			       curve_secret_key, 40, 40),
	CYAML_FIELD_SEQUENCE("gpus", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_cfg, gpus,
			     &gpu_schema, 0, 64),
	CYAML_FIELD_SEQUENCE("pools", CYAML_FLAG_POINTER, struct rd_cfg, pools, &pool_schema, 1, 1024),
	CYAML_FIELD_END
};

struct rd_doc {
	struct rd_cfg *rolloutd;
	void *pool; /* a file may also hold the pool's section; rolloutd ignores it */
};

/* The pool's section is accepted as any mapping so one file can configure both daemons. */
static const cyaml_schema_field_t any_fields[] = { CYAML_FIELD_END };
static const cyaml_schema_field_t doc_fields[] = {
	CYAML_FIELD_MAPPING_PTR("rolloutd", CYAML_FLAG_POINTER, struct rd_doc, rolloutd, rd_fields),
	CYAML_FIELD_IGNORE("pool", CYAML_FLAG_OPTIONAL), CYAML_FIELD_IGNORE("gateway", CYAML_FLAG_OPTIONAL), CYAML_FIELD_END
};
static const cyaml_schema_value_t doc_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct rd_doc,
								     doc_fields) };

static const cyaml_config_t ycfg = {
	.log_fn = rd_log,
	.mem_fn = cyaml_mem,
	.log_level = CYAML_LOG_ERROR,
	.flags = CYAML_CFG_DEFAULT,
};

static int fail(char *err, size_t cap, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
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

int rd_config_load(const char *path, struct rd_cfg **out, char *err, size_t errsz)
{
	(void)any_fields;
	struct stat st;
	*out = NULL;
	if (stat(path, &st) < 0)
		return fail(err, errsz, path, "%s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(err, errsz, path, "not a regular file");
	if (st.st_size == 0)
		return fail(err, errsz, path, "empty file");
	loglen = 0;
	logbuf[0] = 0;
	struct rd_doc *d = NULL;
	cyaml_err_t rc = cyaml_load_file(path, &ycfg, &doc_schema, (cyaml_data_t **)&d, NULL);
	if (rc != CYAML_OK) {
		while (loglen && logbuf[loglen - 1] == '\n')
			logbuf[--loglen] = 0;
		for (char *c = logbuf; *c; c++)
			if (*c == '\n')
				*c = ';';
		return fail(err, errsz, path, "%s%s%s", cyaml_strerror(rc), logbuf[0] ? ": " : "", logbuf);
	}
	if (!d || !d->rolloutd) { /* a file of comments only is an empty document */
		if (d)
			cyaml_free(&ycfg, &doc_schema, d, 0);
		return fail(err, errsz, path, "no rolloutd: section");
	}
	struct rd_cfg *c = d->rolloutd;
#define DEF(f, v)                  \
	do {                       \
		if (!(f))          \
			(f) = (v); \
	} while (0)
#define DEFS(f, v)                       \
	do {                             \
		if (!(f))                \
			(f) = strdup(v); \
	} while (0)
	DEFS(c->socket, "/run/rolloutd.sock");
	DEFS(c->identity, "rolloutd");
	DEF(c->ring_bytes, 4u << 20);
	DEF(c->max_record, 1u << 20);
	DEF(c->lease_ms, 10000);
	DEF(c->heartbeat_ms, 1000);
	DEF(c->pool_timeout_ms, 3000);
	DEF(c->max_queue, 65536);
	DEF(c->drain_ms, 10000);
	if (!c->shards)
		c->shards = c->gpus_count ? c->gpus_count : 1;
	int r = 0;
	if (c->ring_bytes & (c->ring_bytes - 1) || c->ring_bytes < (64u << 10) || c->ring_bytes > (1u << 30))
		r = fail(err, errsz, path,
			 "rolloutd.ring_bytes %u must be a power of two between 64 KiB and 1 GiB",
			 c->ring_bytes);
	else if (c->max_record > c->ring_bytes / 2 - 16)
		r = fail(err, errsz, path, "rolloutd.max_record %u must be at most half of ring_bytes",
			 c->max_record);
	else if (c->shards > 64)
		r = fail(err, errsz, path, "rolloutd.shards %u is above 64", c->shards);
	else if (c->heartbeat_ms == 0 || c->pool_timeout_ms <= c->heartbeat_ms)
		r = fail(err, errsz, path, "rolloutd.pool_timeout_ms must be above heartbeat_ms");
	else if (!c->curve_public_key != !c->curve_secret_key)
		r = fail(err, errsz, path, "rolloutd.curve_public_key and curve_secret_key go together");
	for (unsigned i = 0; !r && i < c->pools_count; i++) {
		struct rd_pool_cfg *p = &c->pools[i];
		if (!p->endpoint == !p->dns)
			r = fail(err, errsz, path, "rolloutd.pools[%u]: exactly one of endpoint and dns", i);
		else if (p->endpoint && strncmp(p->endpoint, "tcp://", 6) &&
			 strncmp(p->endpoint, "ipc://", 6))
			r = fail(err, errsz, path,
				 "rolloutd.pools[%u].endpoint '%s' must be tcp://HOST:PORT or ipc://PATH", i,
				 p->endpoint);
		else if (p->dns && !strchr(p->dns, ':'))
			r = fail(err, errsz, path, "rolloutd.pools[%u].dns '%s' must be HOST:PORT", i,
				 p->dns);
		else if (!!p->server_key != !!c->curve_secret_key)
			r = fail(
			    err, errsz, path,
			    "rolloutd.pools[%u]: server_key and rolloutd's curve keys go together (CURVE on "
			    "every link or none)",
			    i);
	}
	if (r) {
		cyaml_free(&ycfg, &doc_schema, d, 0);
		return r;
	}
	c->_doc = d;
	*out = c;
	return 0;
}

void rd_config_free(struct rd_cfg *c)
{
	if (c)
		cyaml_free(&ycfg, &doc_schema, c->_doc, 0);
}
