/* pinning tests: the placement plan on hwloc XML fixtures shaped like real machines (a
 * DGX-H100-like node, a 2-socket EPYC in NPS4, a workstation, a GPU-less VM) and on
 * synthetic topologies; then binding on the live machine, read back. */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "pin.h"
#include "rollout/error.h"

static void fixture(char *out, size_t cap, const char *name)
{
	const char *src = getenv("ROLLOUT_SOURCE_DIR");
	snprintf(out, cap, "%s/tests/fixtures/topologies/%s", src ? src : ".", name);
}

static void load(struct pin_topo *tp, const char *name)
{
	char path[512];
	fixture(path, sizeof(path), name);
	int rc = pin_topo_load(tp, path, NULL);
	if (rc)
		fail_msg("cannot load %s: %d", path, rc);
}

static bool has_warning(const struct pin_plan *p, const char *needle)
{
	for (int i = 0; i < p->nwarnings; i++)
		if (strstr(p->warnings[i], needle))
			return true;
	return false;
}

/* The invariants every plan must hold: shard cores on the GPU's node while that node has
 * usable cores, no core given twice while free ones remain, reserved and disallowed cores
 * never used, memory node = GPU node. */
static void check_plan(const struct pin_topo *tp, const struct pin_plan *p, const char *reserved,
		       hwloc_const_cpuset_t allowed, bool expect_local)
{
	hwloc_bitmap_t res = hwloc_bitmap_alloc(), used = hwloc_bitmap_alloc();
	if (reserved)
		assert_true(hwloc_bitmap_list_sscanf(res, reserved) >= 0);
	for (int i = 0; i < p->ngpus; i++) {
		const struct pin_gpu *g = &p->gpus[i];
		assert_int_equal(g->index, i);
		assert_int_equal(g->memory_node, g->numa_node);
		assert_true(g->nshard_cpus >= 1);
		hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(tp->t, (unsigned)g->numa_node);
		assert_non_null(node);
		/* The GPU's NUMA node is the one of its non-I/O ancestor. */
		hwloc_obj_t dev = hwloc_get_pcidev_by_busidstring(tp->t, g->pci_bus_id);
		assert_non_null(dev);
		assert_true(hwloc_bitmap_isset(hwloc_get_non_io_ancestor_obj(tp->t, dev)->nodeset,
					       (unsigned)g->numa_node));
		hwloc_obj_t core = hwloc_get_pu_obj_by_os_index(tp->t, (unsigned)g->shard_cpus[0]);
		assert_non_null(core);
		for (int k = 0; k < g->nshard_cpus; k++) {
			unsigned pu = (unsigned)g->shard_cpus[k];
			if (expect_local)
				assert_true(hwloc_bitmap_isset(node->cpuset, pu));
			assert_false(hwloc_bitmap_isset(res, pu));
			if (allowed)
				assert_true(hwloc_bitmap_isset(allowed, pu));
			if (expect_local)
				assert_false(
				    hwloc_bitmap_isset(used, pu)); /* no core twice while free ones remain */
			hwloc_bitmap_set(used, pu);
		}
	}
	if (p->pool_event_cpu >= 0) {
		assert_false(hwloc_bitmap_isset(res, (unsigned)p->pool_event_cpu));
		if (expect_local)
			assert_false(hwloc_bitmap_isset(used, (unsigned)p->pool_event_cpu));
	}
	for (int i = 0; i < p->nnodes; i++) {
		assert_false(hwloc_bitmap_intersects(p->node_cpus[i], res));
		if (expect_local)
			assert_false(hwloc_bitmap_intersects(p->node_cpus[i], used));
		hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(tp->t, (unsigned)p->node_ids[i]);
		assert_true(hwloc_bitmap_isincluded(p->node_cpus[i], node->cpuset));
	}
	hwloc_bitmap_free(res);
	hwloc_bitmap_free(used);
}

static void test_dgx(void **state)
{
	(void)state;
	struct pin_topo tp;
	load(&tp, "dgx-h100.xml");
	struct pin_request rq = { .reserved_cpus = "0-7,112-119" };
	struct pin_plan p;
	char err[256];
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 8);
	for (int i = 0; i < 8; i++) {
		assert_string_equal(p.gpus[i].vendor, "nvidia");
		assert_int_equal(p.gpus[i].numa_node, i < 4 ? 0 : 1);
		assert_int_equal(p.gpus[i].nshard_cpus, 2); /* both hyperthreads of one core */
	}
	assert_string_equal(p.gpus[0].pci_bus_id, "0000:18:00.0");
	assert_string_equal(p.gpus[7].pci_bus_id, "0000:db:00.0");
	assert_int_equal(p.nwarnings, 1); /* only: 104 of 112 cores usable (8 reserved) */
	assert_true(has_warning(&p, "104 of 112 cores are usable"));
	check_plan(&tp, &p, rq.reserved_cpus, NULL, true);
	pin_plan_free(&p);

	/* GPUs named by bus id: only those, in config order; an unknown one is an error naming it. */
	const char *two[] = { "0000:9a:00.0", "0000:18:00.0" };
	rq.gpu_bus_ids = two;
	rq.ngpus = 2;
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 2);
	assert_int_equal(p.gpus[0].numa_node, 1);
	assert_int_equal(p.gpus[1].numa_node, 0);
	pin_plan_free(&p);
	const char *bad[] = { "0000:18:00.0", "0000:77:00.0" };
	rq.gpu_bus_ids = bad;
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), ROLLOUT_E_TOPOLOGY);
	assert_non_null(strstr(err, "0000:77:00.0"));
	pin_topo_free(&tp);
}

static void test_epyc_nps4(void **state)
{
	(void)state;
	struct pin_topo tp;
	load(&tp, "epyc-nps4.xml");
	struct pin_request rq = { 0 };
	struct pin_plan p;
	char err[256];
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 8);
	assert_int_equal(p.nnodes, 8);
	for (int i = 0; i < 8; i++) {
		assert_string_equal(p.gpus[i].vendor, "amd");
		assert_int_equal(p.gpus[i].numa_node, i); /* one GPU per NUMA node */
	}
	check_plan(&tp, &p, NULL, NULL, true);
	pin_plan_free(&p);

	/* A restricted allowed cpuset (a container with two cores per socket) is honoured:
	 * shards leave their nodes and share, with warnings, never touching other cores. */
	hwloc_bitmap_t allowed = hwloc_bitmap_alloc();
	hwloc_bitmap_list_sscanf(allowed, "0-1,64-65,128-129,192-193");
	rq.allowed = allowed;
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	check_plan(&tp, &p, NULL, allowed, false);
	assert_true(has_warning(&p, "off-node") || has_warning(&p, "shares"));
	assert_true(has_warning(&p, "usable"));
	pin_plan_free(&p);
	hwloc_bitmap_free(allowed);
	pin_topo_free(&tp);
}

static void test_workstation(void **state)
{
	(void)state;
	struct pin_topo tp;
	load(&tp, "workstation.xml");
	struct pin_request rq = { .reserved_cpus = "0-3,16-19" };
	struct pin_plan p;
	char err[256];
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 2);
	assert_true(has_warning(&p, "one NUMA node"));
	check_plan(&tp, &p, rq.reserved_cpus, NULL, true);
	pin_plan_free(&p);
	/* Everything but one core reserved: more GPUs than free cores, a usable plan with warnings. */
	rq.reserved_cpus = "0-14,16-30";
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.gpus[0].shard_cpus[0], p.gpus[1].shard_cpus[0]);
	assert_true(has_warning(&p, "shares"));
	check_plan(&tp, &p, rq.reserved_cpus, NULL, false);
	pin_plan_free(&p);
	rq.reserved_cpus = "zero-to-three";
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), ROLLOUT_E_CONFIG);
	pin_topo_free(&tp);
}

static void test_plain_and_synthetic(void **state)
{
	(void)state;
	struct pin_topo tp;
	load(&tp, "plain-4core.xml");
	struct pin_request rq = { 0 };
	struct pin_plan p;
	char err[256];
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 0);
	assert_true(has_warning(&p, "no GPU"));
	assert_true(p.pool_event_cpu >= 0);
	check_plan(&tp, &p, NULL, NULL, true);
	pin_plan_free(&p);
	pin_topo_free(&tp);

	/* A 2-core container, synthetic: a plan with warnings, not a failure. */
	assert_int_equal(pin_topo_load(&tp, NULL, "pack:1 core:2 pu:1"), 0);
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.ngpus, 0);
	pin_plan_free(&p);
	pin_topo_free(&tp);
	assert_int_equal(pin_topo_load(&tp, NULL, "pack:2 [numa] core:4 pu:2"), 0);
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	assert_int_equal(p.nnodes, 2);
	pin_plan_free(&p);
	pin_topo_free(&tp);
	assert_true(pin_topo_load(&tp, "/nonexistent.xml", NULL) < 0);
}

/* On this machine: binding a thread and a memory range really take effect. */
static void test_live_binding(void **state)
{
	(void)state;
	struct pin_topo tp;
	assert_int_equal(pin_topo_load(&tp, NULL, NULL), 0);
	struct pin_request rq = { 0 };
	struct pin_plan p;
	char err[256];
	assert_int_equal(pin_plan_make(&tp, &rq, &p, err, sizeof(err)), 0);
	int cpu = p.pool_event_cpu >= 0 ? p.pool_event_cpu : 0;
	hwloc_bitmap_t actual = hwloc_bitmap_alloc();
	assert_int_equal(pin_bind_thread(&tp, &cpu, 1, actual), 0);
	assert_int_equal(hwloc_bitmap_weight(actual), 1);
	assert_true(hwloc_bitmap_isset(actual, (unsigned)cpu));
	assert_int_equal(sched_getcpu(), cpu);
	hwloc_bitmap_free(actual);
	/* Memory: bind a range to node 0 and ask the kernel where its pages are. */
	if (numa_available() >= 0) {
		size_t len = 1 << 20;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(m != MAP_FAILED);
		hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
		hwloc_bitmap_set(nodes, 0);
		assert_int_equal(
		    hwloc_set_area_membind(tp.t, m, len, nodes, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET),
		    0);
		memset(m, 1, len);
		hwloc_bitmap_t where = hwloc_bitmap_alloc();
		assert_int_equal(hwloc_get_area_memlocation(tp.t, m, len, where, HWLOC_MEMBIND_BYNODESET), 0);
		assert_true(hwloc_bitmap_isequal(where, nodes));
		hwloc_bitmap_free(where);
		hwloc_bitmap_free(nodes);
		munmap(m, len);
	}
	pin_plan_free(&p);
	pin_topo_free(&tp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dgx),          cmocka_unit_test(test_epyc_nps4),
		cmocka_unit_test(test_workstation),  cmocka_unit_test(test_plain_and_synthetic),
		cmocka_unit_test(test_live_binding),
	};
	return cmocka_run_group_tests_name("pinning", tests, NULL, NULL);
}
