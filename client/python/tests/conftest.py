"""Starts a real rollout-pool and rolloutd for the Python tests (needs root for the pool).

`daemons` is one pair shared by the session; `fresh_daemons` starts a pair of its own for a
test that kills one of them or needs another configuration."""
import itertools
import os
import socket
import subprocess
import tempfile
import time

import pytest

import rollout

_serial = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemons:
    """A rollout-pool and a rolloutd started as child processes with one config file."""

    def __init__(self, rolloutd_extra: str = "", pool_extra: str = ""):
        build = os.environ.get("ROLLOUT_BINARY_DIR", "build")
        d = tempfile.mkdtemp()
        port = _free_port()
        self.sock = os.path.join(d, "rolloutd.sock")
        cfg = os.path.join(d, "cfg.yaml")
        with open(cfg, "w") as f:
            f.write(f"""rolloutd:
  socket: {self.sock}
  pools: [{{endpoint: "tcp://127.0.0.1:{port}"}}]
{rolloutd_extra}
pool:
  listen: tcp://127.0.0.1:{port}
  cgroup: rollout-pytest-{os.getpid()}-{next(_serial)}
{pool_extra}
  profiles:
    - {{name: default, warm: 8, max: 64, memory_mb: 256, pids: 64}}
    - {{name: noop, type: noop, max: 100000}}
""")
        self.pool = subprocess.Popen([os.path.join(build, "pool", "rollout-pool"), "--config", cfg,
                                      "--log-level", "warn"])
        self.rolloutd = subprocess.Popen([os.path.join(build, "coordinator", "rolloutd"), "--config", cfg,
                                          "--log-level", "warn"])
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with rollout.Client(socket=self.sock) as c:
                    c.open("noop").close()
                return
            except rollout.RolloutError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("daemons did not come up")

    def stop(self) -> None:
        for p in (self.rolloutd, self.pool):
            if p.poll() is None:
                p.terminate()
        for p in (self.rolloutd, self.pool):
            p.wait(timeout=30)


@pytest.fixture(scope="session")
def daemons():
    if os.geteuid() != 0:
        pytest.skip("rollout-pool needs root (namespaces, cgroups)")
    d = Daemons()
    yield d.sock
    d.stop()


@pytest.fixture
def fresh_daemons():
    """A factory: fresh_daemons(rolloutd_extra=..., pool_extra=...) -> Daemons, stopped after
    the test. The extra text is YAML lines indented two spaces, inside that daemon's section."""
    if os.geteuid() != 0:
        pytest.skip("rollout-pool needs root (namespaces, cgroups)")
    started = []

    def start(**kw) -> Daemons:
        started.append(Daemons(**kw))
        return started[-1]
    yield start
    for d in started:
        d.stop()


def pytest_sessionfinish(session, exitstatus):
    """A skipped test is reported to ctest as a skip (exit 77), never as a pass; the last
    line says why (CI fails on skips that are not on .ci/skip-allowlist)."""
    rep = session.config.pluginmanager.get_plugin("terminalreporter")
    if rep is None or exitstatus != 0:
        return
    skipped = rep.stats.get("skipped", [])
    if skipped:
        reasons = sorted({str(r.longrepr[-1]) if isinstance(r.longrepr, tuple) else str(r.longrepr) for r in skipped})
        print("\n%d skipped: %s" % (len(skipped), "; ".join(reasons)))
        session.exitstatus = 77
