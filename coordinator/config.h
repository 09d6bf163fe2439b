/* rolloutd configuration: the `rolloutd:` section of a YAML file, one table row per key
 * (config.c) from which the schema, defaults, range checks and the reference
 * (`rolloutd --config-reference`, docs/config.md) all come. */
#ifndef ROLLOUT_COORDINATOR_CONFIG_H
#define ROLLOUT_COORDINATOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rd_pool_cfg {
	char *endpoint;   /* tcp://HOST:PORT or ipc://PATH */
	char *dns;        /* HOST:PORT resolved to every address it has (a headless service) */
	char *server_key; /* the pool's CURVE public key (Z85), when CURVE is on */
};

struct rd_gpu_cfg {
	char *pci_bus_id;
};

struct rd_cfg {
	char *socket;             /* attach socket path */
	char *metrics;            /* HOST:PORT of /metrics and /healthz; absent: none */
	char *identity;           /* name given to pools */
	uint32_t shards;          /* shard threads; 0: one per GPU, at least one */
	uint32_t ring_bytes;      /* each ring of a trainer's segment (power of two) */
	uint32_t max_record;      /* largest record on a trainer's ring */
	uint32_t max_transfer_mb; /* largest record carried in pieces */
	uint32_t lease_ms;        /* asked of pools: sandboxes of a silent coordinator are reaped */
	uint32_t heartbeat_ms;
	uint32_t pool_timeout_ms;                  /* a pool silent this long is down */
	uint32_t max_queue;                        /* opens waiting for capacity, per shard */
	uint32_t drain_ms;                         /* SIGTERM: how long in-flight work may take */
	uint32_t dns_refresh_ms;                   /* dns: pool names are looked up again this often */
	char *reserved_cpus;                       /* cores kept for the trainer (cpulist) */
	char *curve_public_key, *curve_secret_key; /* this coordinator's CURVE key pair (Z85) */
	uint32_t *trainer_uids; /* uids allowed to attach (SO_PEERCRED); none listed: any */
	unsigned trainer_uids_count;
	struct rd_gpu_cfg *gpus;
	unsigned gpus_count;
	struct rd_pool_cfg *pools;
	unsigned pools_count;
	void *_doc;
};

/* Loads and checks path; on error writes a message naming the file (line and key where
 * known) into err and returns a negative code. */
int rd_config_load(const char *path, struct rd_cfg **out, char *err, size_t errsz);
void rd_config_free(struct rd_cfg *c);
struct pin_request;
/* Fills rq from the config: GPU bus ids (ids has room for 64) and reserved cores. */
void rd_config_pin_request(const struct rd_cfg *c, const char **ids, struct pin_request *rq);
/* Every key with its type, default, range and meaning, as Markdown. */
void rd_config_reference(FILE *f);

#endif
