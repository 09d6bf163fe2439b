"""Starts a real rollout-pool and rolloutd for the Python tests (needs root for the pool)."""
import os
import subprocess
import tempfile
import time

import pytest

import rollout


@pytest.fixture(scope="session")
def daemons():
    if os.geteuid() != 0:
        pytest.skip("rollout-pool needs root (namespaces, cgroups)")
    build = os.environ.get("ROLLOUT_BINARY_DIR", "build")
    d = tempfile.mkdtemp()
    port = 20000 + os.getpid() % 20000
    sock = os.path.join(d, "rolloutd.sock")
    cfg = os.path.join(d, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write(f"""rolloutd:
  socket: {sock}
  pools: [{{endpoint: "tcp://127.0.0.1:{port}"}}]
pool:
  listen: tcp://127.0.0.1:{port}
  cgroup: rollout-pytest-{os.getpid()}
  profiles:
    - {{name: default, warm: 8, max: 64, memory_mb: 256, pids: 64}}
    - {{name: noop, type: noop, max: 100000}}
""")
    procs = [subprocess.Popen([os.path.join(build, "pool", "rollout-pool"), "--config", cfg, "--log-level", "warn"]),
             subprocess.Popen([os.path.join(build, "coordinator", "rolloutd"), "--config", cfg, "--log-level", "warn"])]
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            with rollout.Client(socket=sock) as c:
                c.open("noop").close()
            break
        except rollout.RolloutError:
            time.sleep(0.1)
    else:
        pytest.fail("daemons did not come up")
    yield sock
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)
