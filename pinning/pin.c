/* The placement plan: GPUs found by PCI class (or named by bus id), each mapped to its NUMA
 * node through its nearest non-I/O ancestor; one shard core per GPU on that node, away from
 * reserved cores and not shared while free cores remain; the rings' memory on the GPU's node;
 * rollout-pool's event loop on a core of its own and its sandboxes on the rest, per node.
 * Only cores in the allowed cpuset count (cgroups and taskset restrict it). */
#include "pin.h"

#include <errno.h>
#include <numa.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rollout/error.h"

int pin_topo_load(struct pin_topo *tp, const char *xml, const char *synthetic)
{
	memset(tp, 0, sizeof(*tp));
	if (hwloc_topology_init(&tp->t) < 0)
		return -errno;
	hwloc_topology_set_io_types_filter(tp->t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	int rc = 0;
	if (xml)
		rc = hwloc_topology_set_xml(tp->t, xml);
	else if (synthetic)
		rc = hwloc_topology_set_synthetic(tp->t, synthetic);
	if (rc < 0 || hwloc_topology_load(tp->t) < 0) {
		rc = errno ? -errno : -EINVAL;
		hwloc_topology_destroy(tp->t);
		tp->t = NULL;
		return rc;
	}
	snprintf(tp->source, sizeof(tp->source), "%s", xml ? xml : synthetic ? synthetic : "live");
	return 0;
}

void pin_topo_free(struct pin_topo *tp)
{
	if (tp->t)
		hwloc_topology_destroy(tp->t);
	tp->t = NULL;
}

static void warn(struct pin_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct pin_plan *p, const char *fmt, ...)
{
	if (p->nwarnings >= PIN_MAX_WARNINGS)
		return;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->warnings[p->nwarnings++] = strdup(buf);
}

static const char *vendor_name(unsigned v)
{
	switch (v) {
	case 0x10de:
		return "nvidia";
	case 0x1002:
		return "amd";
	case 0x8086:
		return "intel";
	case 0x1d0f:
		return "aws";
	default:
		return "other";
	}
}

static void busid(hwloc_obj_t o, char *out, size_t cap)
{
	snprintf(out, cap, "%04x:%02x:%02x.%01x", o->attr->pcidev.domain, o->attr->pcidev.bus,
		 o->attr->pcidev.dev, o->attr->pcidev.func);
}

struct core {
	hwloc_obj_t obj;
	hwloc_bitmap_t pus; /* usable PUs of the core */
	bool used;
};

static int cmp_gpu(const void *a, const void *b)
{
	return strcmp(((const struct pin_gpu *)a)->pci_bus_id, ((const struct pin_gpu *)b)->pci_bus_id);
}

/* Picks a core for a shard: within `local` when possible, the highest-numbered free one. */
static struct core *pick(struct core *cores, int n, hwloc_const_bitmap_t local, bool allow_used)
{
	for (int i = n - 1; i >= 0; i--) {
		if (hwloc_bitmap_iszero(cores[i].pus) || (cores[i].used && !allow_used))
			continue;
		if (!local || hwloc_bitmap_isincluded(cores[i].obj->cpuset, local))
			return &cores[i];
	}
	return NULL;
}

int pin_plan_make(const struct pin_topo *tp, const struct pin_request *rq, struct pin_plan *p, char *err,
		  size_t errsz)
{
	hwloc_topology_t t = tp->t;
	memset(p, 0, sizeof(*p));
	p->pool_event_cpu = -1;
	hwloc_bitmap_t allowed =
	    hwloc_bitmap_dup(rq->allowed ? rq->allowed : hwloc_topology_get_allowed_cpuset(t));
	hwloc_bitmap_t reserved = hwloc_bitmap_alloc();
	int rc = 0;
	if (rq->reserved_cpus && hwloc_bitmap_list_sscanf(reserved, rq->reserved_cpus) < 0) {
		snprintf(err, errsz, "reserved_cpus '%s' is not a cpu list like 0-3,64-67",
			 rq->reserved_cpus);
		rc = ROLLOUT_E_CONFIG;
		goto out;
	}

	/* GPUs: named in the config, or every display/3D controller hwloc sees. */
	if (rq->ngpus) {
		for (size_t i = 0; i < rq->ngpus && i < PIN_MAX_GPUS; i++) {
			hwloc_obj_t o = hwloc_get_pcidev_by_busidstring(t, rq->gpu_bus_ids[i]);
			if (!o) {
				snprintf(err, errsz, "GPU %s named in the config is not in the topology (%s)",
					 rq->gpu_bus_ids[i], tp->source);
				rc = ROLLOUT_E_TOPOLOGY;
				goto out;
			}
			struct pin_gpu *g = &p->gpus[p->ngpus++];
			busid(o, g->pci_bus_id, sizeof(g->pci_bus_id));
			snprintf(g->vendor, sizeof(g->vendor), "%s", vendor_name(o->attr->pcidev.vendor_id));
		}
	} else {
		for (hwloc_obj_t o = NULL; (o = hwloc_get_next_pcidev(t, o)) && p->ngpus < PIN_MAX_GPUS;) {
			if ((o->attr->pcidev.class_id >> 8) != 0x03)
				continue; /* not a display controller (VGA 0300, 3D 0302, ...) */
			/* Skip the tiny on-board VGA of servers (ASPEED, Matrox): not a compute GPU. */
			if (o->attr->pcidev.vendor_id == 0x1a03 || o->attr->pcidev.vendor_id == 0x102b)
				continue;
			struct pin_gpu *g = &p->gpus[p->ngpus++];
			busid(o, g->pci_bus_id, sizeof(g->pci_bus_id));
			snprintf(g->vendor, sizeof(g->vendor), "%s", vendor_name(o->attr->pcidev.vendor_id));
		}
		qsort(p->gpus, (size_t)p->ngpus, sizeof(p->gpus[0]), cmp_gpu);
		if (!p->ngpus)
			warn(p, "no GPU found in the topology: rolloutd runs one shard, placed like GPU-less "
				"work");
	}

	int nnuma = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
	if (nnuma <= 1)
		warn(p, "one NUMA node: placement is by core only, memory binding has no effect");
	if (!strcmp(tp->source, "live") && numa_available() < 0)
		warn(p, "libnuma reports no NUMA support on this machine: ring memory is not bound");

	/* Usable cores: in the allowed set, not touching a reserved PU. */
	int ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
	hwloc_obj_type_t unit = HWLOC_OBJ_CORE;
	if (ncores <= 0) {
		unit = HWLOC_OBJ_PU;
		ncores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
	}
	if (ncores <= 0) {
		snprintf(err, errsz, "the topology (%s) has no processing units", tp->source);
		rc = ROLLOUT_E_TOPOLOGY;
		goto out;
	}
	struct core *cores = calloc((size_t)ncores, sizeof(*cores));
	if (!cores) {
		rc = -ENOMEM;
		goto out;
	}
	int usable = 0;
	for (int i = 0; i < ncores; i++) {
		cores[i].obj = hwloc_get_obj_by_type(t, unit, (unsigned)i);
		cores[i].pus = hwloc_bitmap_alloc();
		if (!hwloc_bitmap_intersects(cores[i].obj->cpuset, reserved))
			hwloc_bitmap_and(cores[i].pus, cores[i].obj->cpuset, allowed);
		usable += !hwloc_bitmap_iszero(cores[i].pus);
	}
	if (usable < ncores)
		warn(p, "%d of %d cores are usable (the rest are reserved or outside the allowed cpuset)",
		     usable, ncores);

	for (int i = 0; i < p->ngpus; i++) {
		struct pin_gpu *g = &p->gpus[i];
		g->index = i;
		hwloc_obj_t o = hwloc_get_pcidev_by_busidstring(t, g->pci_bus_id);
		hwloc_obj_t anc = o ? hwloc_get_non_io_ancestor_obj(t, o) : NULL;
		g->numa_node =
		    anc && !hwloc_bitmap_iszero(anc->nodeset) ? hwloc_bitmap_first(anc->nodeset) : -1;
		if (anc && hwloc_bitmap_weight(anc->nodeset) > 1)
			warn(p, "GPU %s is local to several NUMA nodes; using node %d", g->pci_bus_id,
			     g->numa_node);
		g->memory_node = g->numa_node;
		hwloc_obj_t node =
		    g->numa_node >= 0 ? hwloc_get_numanode_obj_by_os_index(t, (unsigned)g->numa_node) : NULL;
		hwloc_const_cpuset_t local = node ? node->cpuset : NULL;
		struct core *c = pick(cores, ncores, local, false);
		if (!c && (c = pick(cores, ncores, local, true)))
			warn(p, "GPU %s: no free core left on NUMA node %d, its shard shares a core",
			     g->pci_bus_id, g->numa_node);
		if (!c && (c = pick(cores, ncores, NULL, false)))
			warn(p, "GPU %s: no usable core on NUMA node %d, its shard runs off-node",
			     g->pci_bus_id, g->numa_node);
		if (!c && (c = pick(cores, ncores, NULL, true)))
			warn(p, "GPU %s: more GPUs than usable cores, its shard shares a core off-node",
			     g->pci_bus_id);
		if (!c) {
			warn(p, "GPU %s: no usable core at all; its shard is not pinned", g->pci_bus_id);
			continue;
		}
		c->used = true;
		for (int pu = hwloc_bitmap_first(c->pus); pu >= 0 && g->nshard_cpus < 8;
		     pu = hwloc_bitmap_next(c->pus, pu))
			g->shard_cpus[g->nshard_cpus++] = pu;
	}

	/* rollout-pool: its event loop on a free core, sandboxes on what remains, per node. */
	struct core *ev = pick(cores, ncores, NULL, false);
	if (ev) {
		ev->used = true;
		p->pool_event_cpu = hwloc_bitmap_first(ev->pus);
	} else {
		warn(p, "no free core for rollout-pool's event loop: it shares with the sandboxes");
	}
	hwloc_bitmap_t free_cpus = hwloc_bitmap_alloc();
	for (int i = 0; i < ncores; i++)
		if (!cores[i].used)
			hwloc_bitmap_or(free_cpus, free_cpus, cores[i].pus);
	for (hwloc_obj_t n = NULL;
	     (n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n)) && p->nnodes < PIN_MAX_NODES;) {
		p->node_ids[p->nnodes] = (int)n->os_index;
		p->node_cpus[p->nnodes] = hwloc_bitmap_alloc();
		hwloc_bitmap_and(p->node_cpus[p->nnodes], n->cpuset, free_cpus);
		p->nnodes++;
	}
	if (hwloc_bitmap_iszero(free_cpus))
		warn(p, "no core is left for sandboxes: they will share the shards' cores");
	hwloc_bitmap_free(free_cpus);
	for (int i = 0; i < ncores; i++)
		hwloc_bitmap_free(cores[i].pus);
	free(cores);
out:
	hwloc_bitmap_free(allowed);
	hwloc_bitmap_free(reserved);
	if (rc)
		pin_plan_free(p);
	return rc;
}

void pin_plan_free(struct pin_plan *p)
{
	for (int i = 0; i < p->nwarnings; i++)
		free(p->warnings[i]);
	for (int i = 0; i < p->nnodes; i++)
		hwloc_bitmap_free(p->node_cpus[i]);
	p->nwarnings = p->nnodes = 0;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04X", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

void pin_plan_print_json(const struct pin_plan *p, FILE *out)
{
	fputs("{\"gpus\":[", out);
	for (int i = 0; i < p->ngpus; i++) {
		const struct pin_gpu *g = &p->gpus[i];
		fprintf(out,
			"%s{\"index\":%d,\"pci_bus_id\":\"%s\",\"vendor\":\"%s\",\"numa_node\":%d,\"shard_"
			"cpus\":[",
			i ? "," : "", g->index, g->pci_bus_id, g->vendor, g->numa_node);
		for (int k = 0; k < g->nshard_cpus; k++)
			fprintf(out, "%s%d", k ? "," : "", g->shard_cpus[k]);
		fprintf(out, "],\"memory_node\":%d}", g->memory_node);
	}
	fprintf(out, "],\"pool\":{\"event_loop_cpu\":%d,\"sandbox_cpusets\":{", p->pool_event_cpu);
	for (int i = 0; i < p->nnodes; i++) {
		char *list;
		hwloc_bitmap_list_asprintf(&list, p->node_cpus[i]);
		fprintf(out, "%s\"%d\":\"%s\"", i ? "," : "", p->node_ids[i], list);
		free(list);
	}
	fputs("}},\"warnings\":[", out);
	for (int i = 0; i < p->nwarnings; i++) {
		if (i)
			fputc(',', out);
		json_str(out, p->warnings[i]);
	}
	fputs("]}\n", out);
}

void pin_plan_print_table(const struct pin_plan *p, const struct pin_topo *tp, FILE *out)
{
	hwloc_topology_t t = tp->t;
	fprintf(out, "topology %s: %d package(s), %d NUMA node(s), %d cores, %d PUs\n\n", tp->source,
		hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PACKAGE),
		hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE), hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE),
		hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU));
	fprintf(out, "%-4s %-13s %-7s %-5s %-12s %s\n", "GPU", "PCI bus id", "vendor", "NUMA", "shard cpus",
		"ring memory node");
	for (int i = 0; i < p->ngpus; i++) {
		const struct pin_gpu *g = &p->gpus[i];
		char cpus[64] = "-";
		int n = 0;
		for (int k = 0; k < g->nshard_cpus; k++)
			n += snprintf(cpus + n, sizeof(cpus) - (size_t)n, "%s%d", k ? "," : "",
				      g->shard_cpus[k]);
		fprintf(out, "%-4d %-13s %-7s %-5d %-12s %d\n", g->index, g->pci_bus_id, g->vendor,
			g->numa_node, cpus, g->memory_node);
	}
	if (!p->ngpus)
		fprintf(out, "(no GPU)\n");
	fprintf(out, "\nrollout-pool: event loop on cpu %d\n", p->pool_event_cpu);
	for (int i = 0; i < p->nnodes; i++) {
		char *list;
		hwloc_bitmap_list_asprintf(&list, p->node_cpus[i]);
		fprintf(out, "  sandboxes on NUMA node %d: cpus %s\n", p->node_ids[i],
			list[0] ? list : "(none)");
		free(list);
	}
	if (p->nwarnings) {
		fprintf(out, "\nwarnings:\n");
		for (int i = 0; i < p->nwarnings; i++)
			fprintf(out, "  - %s\n", p->warnings[i]);
	}
}

int pin_bind_thread(const struct pin_topo *tp, const int *cpus, int ncpus, hwloc_bitmap_t actual)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	for (int i = 0; i < ncpus; i++)
		hwloc_bitmap_set(set, (unsigned)cpus[i]);
	int rc = 0;
	if (hwloc_set_cpubind(tp->t, set, HWLOC_CPUBIND_THREAD) < 0)
		rc = -errno;
	if (!rc && actual && hwloc_get_cpubind(tp->t, actual, HWLOC_CPUBIND_THREAD) < 0)
		rc = -errno;
	hwloc_bitmap_free(set);
	return rc;
}
