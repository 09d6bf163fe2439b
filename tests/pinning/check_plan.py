"""rolloutd --plan --json on each topology fixture: the JSON has the documented shape and
the plan is right (shard cores on the GPU's node, none twice, memory node = GPU node,
reserved cores unused); the table form prints; a GPU the topology lacks is an error naming it."""
import json
import os
import subprocess
import sys
import tempfile

rolloutd = sys.argv[1]
src = os.environ.get("ROLLOUT_SOURCE_DIR", ".")
fixtures = os.path.join(src, "tests", "fixtures", "topologies")
failures = 0


def run(args):
    return subprocess.run([rolloutd] + args, capture_output=True, text=True, timeout=30)


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    failures += not cond


def cpulist(text):
    cpus = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


cases = {
    "dgx-h100.xml": dict(config=os.path.join(src, "configs", "dgx-h100.yaml"), gpus=8, nodes={0: 4, 1: 4}),
    "epyc-nps4.xml": dict(config=None, gpus=8, nodes={n: 1 for n in range(8)}),
    "workstation.xml": dict(config=None, gpus=2, nodes={0: 2}),
    "plain-4core.xml": dict(config=None, gpus=0, nodes={}),
}
with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("rolloutd:\n  pools: [{endpoint: tcp://127.0.0.1:7710}]\n")
    minimal = f.name
for name, want in cases.items():
    cfg = want["config"] or minimal
    r = run(["--plan", "--json", "--config", cfg, "--topology", os.path.join(fixtures, name)])
    check(r.returncode == 0, f"{name}: --plan --json exits 0 ({r.stderr.strip()})")
    plan = json.loads(r.stdout)
    check(set(plan) >= {"gpus", "pool", "warnings"}, f"{name}: keys gpus, pool, warnings")
    check(len(plan["gpus"]) == want["gpus"], f"{name}: {want['gpus']} GPUs")
    per_node = {}
    used = set()
    reserved = cpulist("0-7,56-63,112-119,168-175") if want["config"] else set()
    for g in plan["gpus"]:
        check(set(g) >= {"index", "pci_bus_id", "numa_node", "shard_cpus", "memory_node"}, f"{name}: GPU {g['index']} keys")
        check(g["memory_node"] == g["numa_node"], f"{name}: GPU {g['index']} memory on its node")
        check(not (set(g["shard_cpus"]) & used), f"{name}: GPU {g['index']} shard core not shared")
        check(not (set(g["shard_cpus"]) & reserved), f"{name}: GPU {g['index']} avoids reserved cores")
        used |= set(g["shard_cpus"])
        per_node[g["numa_node"]] = per_node.get(g["numa_node"], 0) + 1
        node_cpus = cpulist(plan["pool"]["sandbox_cpusets"][str(g["numa_node"])])
        check(not (node_cpus & set(g["shard_cpus"])), f"{name}: GPU {g['index']} shard core not given to sandboxes")
    check(per_node == want["nodes"], f"{name}: GPUs per NUMA node {per_node}")
    check(plan["pool"]["event_loop_cpu"] not in used, f"{name}: pool event loop on its own core")
    t = run(["--plan", "--config", cfg, "--topology", os.path.join(fixtures, name)])
    check(t.returncode == 0 and "rollout-pool: event loop on cpu" in t.stdout, f"{name}: table form")

with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
    f.write("rolloutd:\n  gpus: [{pci_bus_id: \"0000:77:00.0\"}]\n  pools: [{endpoint: tcp://127.0.0.1:7710}]\n")
    missing = f.name
r = run(["--plan", "--config", missing, "--topology", os.path.join(fixtures, "dgx-h100.xml")])
check(r.returncode == 1 and "0000:77:00.0" in r.stderr, "unknown GPU bus id: error naming it")
r = run(["--plan", "--json", "--config", minimal, "--synthetic", "pack:1 core:2 pu:1"])
check(r.returncode == 0 and json.loads(r.stdout)["warnings"], "2-core synthetic: plan with warnings")
r = run(["--plan", "--json", "--config", minimal])
check(r.returncode == 0 and "gpus" in json.loads(r.stdout), "live machine plan")
os.unlink(minimal)
os.unlink(missing)
print(f"{failures} failed")
sys.exit(1 if failures else 0)
