/* pinning: what the machine looks like (hwloc: live, an XML file or a synthetic
 * description), where its GPUs are (PCI devices and their NUMA node), and the placement
 * plan for rolloutd's shard threads, their rings' memory and rollout-pool's cores.
 * Functions return 0 or a negative code; the plan's warnings are strings it owns. */
#ifndef ROLLOUT_PINNING_PIN_H
#define ROLLOUT_PINNING_PIN_H

#include <hwloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define PIN_MAX_GPUS     64
#define PIN_MAX_WARNINGS 32
#define PIN_MAX_NODES    64

struct pin_topo {
	hwloc_topology_t t;
	char source[128]; /* "live", the XML path, or the synthetic description */
};

/* Loads the live machine (xml and synthetic NULL), an XML file, or a synthetic description,
 * with I/O devices kept so GPUs are visible. */
int pin_topo_load(struct pin_topo *tp, const char *xml, const char *synthetic);
void pin_topo_free(struct pin_topo *tp);

struct pin_request {
	const char *const *gpu_bus_ids; /* from the config; NULL or empty: find GPUs with hwloc */
	size_t ngpus;
	const char *reserved_cpus;    /* cpulist ("0-3,64-67") kept for the trainer; NULL: none */
	hwloc_const_cpuset_t allowed; /* NULL: the topology's allowed cpuset (cgroups, taskset) */
};

struct pin_gpu {
	int index;
	char pci_bus_id[16];
	char vendor[16];
	int numa_node;     /* os index; -1 when the machine has no NUMA information */
	int shard_cpus[8]; /* PU os indexes of the shard thread's core */
	int nshard_cpus;
	int memory_node; /* node for the rings' pages */
};

struct pin_plan {
	struct pin_gpu gpus[PIN_MAX_GPUS];
	int ngpus;
	int pool_event_cpu; /* PU for rollout-pool's event loop, -1 if none left */
	int nnodes;
	int node_ids[PIN_MAX_NODES];
	hwloc_bitmap_t node_cpus[PIN_MAX_NODES]; /* sandbox cpuset per NUMA node */
	char *warnings[PIN_MAX_WARNINGS];
	int nwarnings;
};

/* Builds the plan. A GPU named in the request that the topology does not have is
 * ROLLOUT_E_TOPOLOGY with err naming it; everything else degrades with warnings. */
int pin_plan_make(const struct pin_topo *tp, const struct pin_request *rq, struct pin_plan *plan, char *err,
		  size_t errsz);
void pin_plan_free(struct pin_plan *plan);
void pin_plan_print_table(const struct pin_plan *plan, const struct pin_topo *tp, FILE *out);
void pin_plan_print_json(const struct pin_plan *plan, FILE *out);

/* Binds the calling thread to the given PUs and reads the binding back into *actual
 * (a bitmap the caller allocated). */
int pin_bind_thread(const struct pin_topo *tp, const int *cpus, int ncpus, hwloc_bitmap_t actual);

#endif
