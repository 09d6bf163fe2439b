/* rolloutd's configuration: the key tables (one row per key: type, default, range, doc),
 * and the checks that span several keys. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "pin.h"

/* X(S, TYPE, name, default, lo, hi, extra, doc) -- see common/cfg.h */
#define RD_POOL_KEYS(X, S)                                                                         \
	X(S, STR, endpoint, NULL, 1, 255, NULL, "tcp://HOST:PORT or ipc://PATH of one pool")       \
	X(S, STR, dns, NULL, 3, 255, NULL, "HOST:PORT: one pool per address the name resolves to") \
	X(S, STR, server_key, NULL, 40, 40, NULL, "the pool's CURVE public key (Z85), with CURVE on")

#define RD_GPU_KEYS(X, S) X(S, STR, pci_bus_id, NULL, 7, 16, NULL, "PCI bus id of a GPU this node trains on")

static const cyaml_schema_field_t pool_fields[] = { RD_POOL_KEYS(CFG_CYAML_FIELD, struct rd_pool_cfg)
							CYAML_FIELD_END };
static const cyaml_schema_value_t pool_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct rd_pool_cfg,
								      pool_fields) };
static const cyaml_schema_field_t gpu_fields[] = { RD_GPU_KEYS(CFG_CYAML_FIELD, struct rd_gpu_cfg)
						       CYAML_FIELD_END };
static const cyaml_schema_value_t gpu_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct rd_gpu_cfg,
								     gpu_fields) };

#define RD_KEYS(X, S)                                                                                        \
	X(S, STR, socket, "/run/rolloutd/rolloutd.sock", 1, 107, NULL,                                       \
	  "attach socket trainers (librollout) connect to")                                                  \
	X(S, STR, metrics, NULL, 3, 64, NULL, "HOST:PORT of /metrics and /healthz; absent: not served")      \
	X(S, STR, identity, "rolloutd", 1, 128, NULL, "name given to pools (logs, routing ids)")             \
	X(S, U32, shards, "0", 0, 64, NULL, "shard threads; 0: one per configured GPU, at least one")        \
	X(S, U32, ring_bytes, "4194304", 65536, 1u << 30, NULL,                                              \
	  "each ring of a trainer's segment, a power of two")                                                \
	X(S, U32, max_record, "1048576", 256, 1u << 29, NULL,                                                \
	  "largest record on a trainer's ring, at most half of ring_bytes; larger requests and results "     \
	  "travel in pieces")                                                                                \
	X(S, U32, max_transfer_mb, "48", 1, 64, NULL,                                                        \
	  "largest request or result carried in pieces (a put_file, a get_file, an exec's output); keep it " \
	  "under the pools' max_message_mb. Larger requests complete BAD_REQUEST, larger results "           \
	  "OUTPUT_LIMIT")                                                                                    \
	X(S, U32, lease_ms, "10000", 100, 86400000, NULL,                                                    \
	  "pools reap this coordinator's sandboxes after this "                                              \
	  "much silence")                                                                                    \
	X(S, U32, heartbeat_ms, "1000", 10, 600000, NULL, "heartbeat to every pool")                         \
	X(S, U32, pool_timeout_ms, "3000", 20, 3600000, NULL,                                                \
	  "a pool silent this long is down: its requests complete SANDBOX_LOST")                             \
	X(S, U32, max_queue, "65536", 1, 10000000, NULL,                                                     \
	  "opens waiting for pool capacity per shard before the "                                            \
	  "ring backs up")                                                                                   \
	X(S, U32, drain_ms, "10000", 1, 3600000, NULL, "on SIGTERM, time given to requests in flight")       \
	X(S, U32, dns_refresh_ms, "2000", 100, 3600000, NULL,                                                \
	  "pools given by dns: are looked up again this often; new addresses join, vanished ones get no "    \
	  "new opens")                                                                                       \
	X(S, STR, reserved_cpus, NULL, 1, 256, NULL, "cores kept for the trainer and its loaders (cpulist)") \
	X(S, STR, curve_public_key, NULL, 40, 40, NULL, "this coordinator's CURVE public key (Z85)")         \
	X(S, STR, curve_secret_key, NULL, 40, 40, NULL, "this coordinator's CURVE secret key (Z85)")         \
	X(S, SEQ, trainer_uids, NULL, 0, 1024, &cfg_u32_schema,                                              \
	  "uids allowed to attach (checked with SO_PEERCRED); absent: any uid that can open the socket")     \
	X(S, SEQ, gpus, NULL, 0, 64, &gpu_schema, "GPUs of this node (pci_bus_id each): one shard per GPU")  \
	X(S, SEQ, pools, NULL, 1, 1024, &pool_schema,                                                        \
	  "pools to use (endpoint or dns each, server_key with CURVE)")

static const cyaml_schema_field_t rd_fields[] = { RD_KEYS(CFG_CYAML_FIELD, struct rd_cfg) CYAML_FIELD_END };
static const struct cfg_key rd_keys[] = { RD_KEYS(CFG_KEY_ROW, struct rd_cfg) };
static const struct cfg_key pool_keys[] = { RD_POOL_KEYS(CFG_KEY_ROW, struct rd_pool_cfg) };
static const struct cfg_key gpu_keys[] = { RD_GPU_KEYS(CFG_KEY_ROW, struct rd_gpu_cfg) };
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* The file: `rolloutd:` is ours; the other daemons' sections may share the file. */
struct rd_doc {
	struct rd_cfg *rolloutd;
};
static const cyaml_schema_field_t doc_fields[] = {
	CYAML_FIELD_MAPPING_PTR("rolloutd", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, struct rd_doc, rolloutd,
				rd_fields),
	CYAML_FIELD_IGNORE("pool", CYAML_FLAG_OPTIONAL), CYAML_FIELD_IGNORE("gateway", CYAML_FLAG_OPTIONAL),
	CYAML_FIELD_END
};
static const cyaml_schema_value_t doc_schema = { CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct rd_doc,
								     doc_fields) };

static int check(struct rd_cfg *c, const char *path, char *err, size_t errsz)
{
	int rc = cfg_apply(c, rd_keys, NKEYS(rd_keys), path, "rolloutd", err, errsz);
	for (unsigned i = 0; !rc && i < c->gpus_count; i++) {
		char sec[48];
		snprintf(sec, sizeof(sec), "rolloutd.gpus[%u]", i);
		rc = cfg_apply(&c->gpus[i], gpu_keys, NKEYS(gpu_keys), path, sec, err, errsz);
	}
	for (unsigned i = 0; !rc && i < c->pools_count; i++) {
		struct rd_pool_cfg *p = &c->pools[i];
		char sec[48];
		snprintf(sec, sizeof(sec), "rolloutd.pools[%u]", i);
		rc = cfg_apply(p, pool_keys, NKEYS(pool_keys), path, sec, err, errsz);
		if (rc)
			break;
		if (!p->endpoint == !p->dns)
			rc = cfg_fail(err, errsz, path, sec, 0, "exactly one of endpoint and dns");
		else if (p->endpoint && strncmp(p->endpoint, "tcp://", 6) &&
			 strncmp(p->endpoint, "ipc://", 6))
			rc = cfg_fail(err, errsz, path, "rolloutd.pools.endpoint", i,
				      "'%s' must be tcp://HOST:PORT or ipc://PATH", p->endpoint);
		else if (p->dns && (!strchr(p->dns, ':') || strchr(p->dns, ':')[1] == 0))
			rc = cfg_fail(err, errsz, path, "rolloutd.pools.dns", 0, "'%s' must be HOST:PORT",
				      p->dns);
		else if (!!p->server_key != !!c->curve_secret_key)
			rc = cfg_fail(
			    err, errsz, path, sec, 0,
			    "server_key and rolloutd's curve keys go together (CURVE on every link or none)");
	}
	if (rc)
		return rc;
	if (!c->shards)
		c->shards = c->gpus_count ? c->gpus_count : 1;
	if (c->ring_bytes & (c->ring_bytes - 1))
		return cfg_fail(err, errsz, path, "rolloutd.ring_bytes", 0, "%u must be a power of two",
				c->ring_bytes);
	if (c->max_record > c->ring_bytes / 2 - 16)
		return cfg_fail(err, errsz, path, "rolloutd.max_record", 0,
				"%u must be at most half of ring_bytes", c->max_record);
	if (c->pool_timeout_ms <= c->heartbeat_ms)
		return cfg_fail(err, errsz, path, "rolloutd.pool_timeout_ms", 0,
				"pool_timeout_ms must be above heartbeat_ms (%u <= %u)", c->pool_timeout_ms,
				c->heartbeat_ms);
	if (!c->curve_public_key != !c->curve_secret_key)
		return cfg_fail(err, errsz, path, "rolloutd.curve_public_key", 0,
				"curve_public_key and curve_secret_key go together");
	return 0;
}

int rd_config_load(const char *path, struct rd_cfg **out, char *err, size_t errsz)
{
	struct rd_doc *d = NULL;
	struct rd_cfg *c = NULL;
	*out = NULL;
	int rc = cfg_load_section(path, &doc_schema, offsetof(struct rd_doc, rolloutd), "rolloutd",
				  (void **)&d, (void **)&c, err, errsz);
	if (rc)
		return rc;
	if ((rc = check(c, path, err, errsz))) {
		cfg_free(&doc_schema, d);
		return rc;
	}
	c->_doc = d;
	*out = c;
	return 0;
}

void rd_config_free(struct rd_cfg *c)
{
	if (c)
		cfg_free(&doc_schema, c->_doc);
}

void rd_config_reference(FILE *f)
{
	fprintf(f, "### rolloutd\n\n");
	cfg_reference(f, "rolloutd", rd_keys, NKEYS(rd_keys));
	fprintf(f, "\n### rolloutd.pools[]\n\n");
	cfg_reference(f, "rolloutd.pools[]", pool_keys, NKEYS(pool_keys));
	fprintf(f, "\n### rolloutd.gpus[]\n\n");
	cfg_reference(f, "rolloutd.gpus[]", gpu_keys, NKEYS(gpu_keys));
}

void rd_config_pin_request(const struct rd_cfg *c, const char **ids, struct pin_request *rq)
{
	unsigned n = c->gpus_count < 64 ? c->gpus_count : 64;
	for (unsigned i = 0; i < n; i++)
		ids[i] = c->gpus[i].pci_bus_id;
	*rq = (struct pin_request){ .gpu_bus_ids = ids, .ngpus = n, .reserved_cpus = c->reserved_cpus };
}
