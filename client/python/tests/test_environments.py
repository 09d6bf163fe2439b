"""Environments (issue 11) through the Python binding: a sandbox's files snapshotted and
opened again, forked n ways, and a task continued from its checkpoint after the pool that
held it is killed (kill -9), on a second pool that shares the snapshot store; no step runs
twice. The sandboxes are image profiles (scripts/mkimage busybox). The first tests need no
daemons; the others start rolloutd and two rollout-pools of their own (root)."""
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import rollout
from rollout import Status

SOURCE = Path(os.environ.get("ROLLOUT_SOURCE_DIR", Path(__file__).resolve().parents[3]))
BUILD = Path(os.environ.get("ROLLOUT_BINARY_DIR", "build"))


# ---------------------------------------------------------------- no daemons

class _FakeClient:
    """Just what _SandboxBase and _Core._record need."""

    def __init__(self):
        self._sandboxes = {}


def test_lost_error_carries_the_checkpoint():
    sb = rollout.Sandbox.__new__(rollout.Sandbox)
    rollout._SandboxBase.__init__(sb, _FakeClient(), 7, "busybox")
    r = rollout.Result(status=Status.SANDBOX_LOST, infra_failed=True, message="pool down", checkpoint="ck-1",
                       checkpoint_request_id=41)
    with pytest.raises(rollout.SandboxLostError) as e:
        rollout._raise_for(r, "exec", sb)
    lost = e.value
    assert isinstance(lost, rollout.RolloutError)
    assert (lost.status, lost.infra_failed, lost.checkpoint, lost.checkpoint_request_id) == \
        (Status.SANDBOX_LOST, True, "ck-1", 41)
    assert lost.sandbox is sb and "ck-1" in str(lost)
    assert (sb.checkpoint, sb.checkpoint_request_id) == ("ck-1", 41)  # the sandbox took it too
    again = lost._again()  # a stored error raised again keeps its fields
    assert type(again) is rollout.SandboxLostError and again.checkpoint == "ck-1" and again.sandbox is sb
    # A lost completion without a checkpoint falls back to the latest the sandbox saw.
    with pytest.raises(rollout.SandboxLostError) as e:
        rollout._raise_for(rollout.Result(status=Status.SANDBOX_LOST, infra_failed=True), "exec", sb)
    assert (e.value.checkpoint, e.value.checkpoint_request_id) == ("ck-1", 41)
    # Other statuses stay plain RolloutErrors, with no checkpoint.
    with pytest.raises(rollout.RolloutError) as e:
        rollout._raise_for(rollout.Result(status=Status.TIMEOUT), "exec", sb)
    assert type(e.value) is rollout.RolloutError and e.value.checkpoint is None


def test_steps_and_resume_point():
    client = _FakeClient()
    sb = rollout.Sandbox.__new__(rollout.Sandbox)
    rollout._SandboxBase.__init__(sb, client, 9, "busybox", origin="snap-0")
    for rid, what in ((3, "echo a"), (4, "echo b"), (6, "echo c")):
        rollout._Core._record(client, 9, rid, "exec", what)
    rollout._Core._record(client, 10, 7, "exec", "another sandbox's")
    assert [s.request_id for s in sb.steps] == [3, 4, 6]
    assert rollout._describe(["sh", "-c", "echo 'x y'"]) == "sh -c 'echo '\"'\"'x y'\"'\"''"
    assert len(rollout._describe("x" * 1000)) == 200
    # No checkpoint yet: from the snapshot it was opened from, every step after.
    assert sb._resume_point() == ("snap-0", 0)
    assert [s.description for s in sb.steps_after(0)] == ["echo a", "echo b", "echo c"]
    sb._take(rollout.Result(status=Status.OK, checkpoint="ck-4", checkpoint_request_id=4))
    assert sb._resume_point() == ("ck-4", 4)
    assert [s.description for s in sb.steps_after(4)] == ["echo c"]
    bare = rollout.Sandbox.__new__(rollout.Sandbox)
    rollout._SandboxBase.__init__(bare, client, 11)
    with pytest.raises(rollout.RolloutError) as e:
        bare._resume_point()
    assert e.value.status == Status.NOT_FOUND


# ---------------------------------------------------------------- daemons

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def busybox():
    """The busybox OCI layout (made once per build dir; mkimage locks and reuses it)."""
    out = BUILD / "tests" / "images" / "images"
    out.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([str(SOURCE / "scripts" / "mkimage"), "busybox", str(out)], capture_output=True, text=True)
    if p.returncode == 77:
        pytest.skip("scripts/mkimage cannot make the busybox image here: " + p.stderr.strip()[-200:])
    assert p.returncode == 0, p.stderr
    return p.stdout.splitlines()[0]


class EnvDaemons:
    """rolloutd with two pools in its config, A (0) and B (1), each its own process with its
    own layer store and cgroup, sharing one snapshot store. Pool A starts with rolloutd; B
    when a test asks."""

    def __init__(self, image: str):
        if os.geteuid() != 0:
            pytest.skip("rollout-pool needs root (namespaces, cgroups)")
        self.dir = Path(tempfile.mkdtemp(prefix="rollout-env-"))
        self.sock = str(self.dir / "rolloutd.sock")
        self.metrics = _free_port()
        ports = [_free_port(), _free_port()]
        rolloutd = f"""rolloutd:
  socket: {self.sock}
  metrics: 127.0.0.1:{self.metrics}
  shards: 1
  heartbeat_ms: 100
  pool_timeout_ms: 1000
  pools: [{{endpoint: "tcp://127.0.0.1:{ports[0]}"}}, {{endpoint: "tcp://127.0.0.1:{ports[1]}"}}]
"""
        self.cfgs = []
        for i, port in enumerate(ports):
            cfg = self.dir / f"pool{i}.yaml"
            cfg.write_text(rolloutd + f"""pool:
  listen: tcp://127.0.0.1:{port}
  cgroup: rollout-pytest-env-{os.getpid()}-{i}
  state_dir: {self.dir}/state{i}
  snapshot_dir: {self.dir}/snapshots
  profiles:
    - {{name: busybox, image: "oci:{image}:latest", disk_mb: 64, warm: 1, max: 16, memory_mb: 256, pids: 64}}
""")
            self.cfgs.append(str(cfg))
        self.pools = [None, None]
        self.rolloutd = subprocess.Popen([str(BUILD / "coordinator" / "rolloutd"), "--config", self.cfgs[0],
                                          "--log-level", "warn"])
        self.start_pool(0)

    def start_pool(self, i: int) -> None:
        self.pools[i] = subprocess.Popen([str(BUILD / "pool" / "rollout-pool"), "--config", self.cfgs[i],
                                          "--log-level", "warn"])
        self.wait_pool(i, True)

    def kill_pool(self, i: int) -> None:
        self.pools[i].send_signal(signal.SIGKILL)
        self.pools[i].wait(timeout=10)

    def pool_up(self, i: int) -> bool:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=2).read().decode()
        except OSError:
            return False
        return re.search(r'^rolloutd_pool_up\{shard="0",pool="%d"\} 1$' % i, text, re.M) is not None

    def wait_pool(self, i: int, up: bool, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.pool_up(i) == up:
                return
            assert self.pools[i] is None or self.pools[i].poll() is None or not up, f"pool {i} exited"
            time.sleep(0.1)
        pytest.fail(f"pool {i} is not {'up' if up else 'down'} at rolloutd after {seconds} s")

    def stop(self) -> None:
        # A pool killed with -9 left its sandboxes' cgroups and mounts: starting it again
        # reaps them (RELIABILITY 18), then it stops like the others.
        for i, p in enumerate(self.pools):
            if p is not None and p.poll() is not None and p.returncode == -signal.SIGKILL:
                self.start_pool(i)
        for p in [self.rolloutd] + [p for p in self.pools if p is not None]:
            if p.poll() is None:
                p.terminate()
        codes = [p.wait(timeout=30) for p in [self.rolloutd] + [p for p in self.pools if p is not None]]
        shutil.rmtree(self.dir, ignore_errors=True)
        # Everything stopped cleanly (under ASan, a report in rolloutd fails here).
        assert codes == [0] * len(codes), codes


@pytest.fixture
def env(busybox):
    d = EnvDaemons(busybox)
    yield d
    d.stop()


def _lines(r: rollout.Result) -> list:
    return r.stdout.decode().splitlines()


def test_snapshot_open_and_fork(env):
    with rollout.Client(socket=env.sock) as c:
        sb = c.open("busybox")
        sb.exec("mkdir -p /tmp/task && echo base > /tmp/task/a && rm /etc/rollout-image && ln -s a /tmp/task/l")
        sb.put_file("/tmp/task/b", b"bee", 0o600)
        snap = sb.snapshot()
        assert isinstance(snap, str) and snap
        assert [s.action for s in sb.steps] == ["exec", "put_file"]  # a snapshot is not a step
        sb.exec("echo later > /tmp/task/c")
        probe = ("cat /tmp/task/a; cat /tmp/task/b; echo; stat -c %a /tmp/task/b; readlink /tmp/task/l; "
                 "test -e /etc/rollout-image && echo image-file || echo deleted; "
                 "test -e /tmp/task/c && echo c || echo no-c")
        two = c.open("busybox", snapshot=snap)
        assert two.origin == snap and two.profile == "busybox"
        assert _lines(two.exec(probe)) == ["base", "bee", "600", "a", "deleted", "no-c"]
        # The copy is its own: writes there leave the source alone, and the other way round.
        two.exec("echo changed > /tmp/task/a")
        assert _lines(sb.exec("cat /tmp/task/a")) == ["base"]
        # fork: one snapshot of sb now (with c), three sandboxes from it, each independent.
        kids = c.fork(sb, 3)
        assert len({k.id for k in kids} | {sb.id}) == 4
        for i, k in enumerate(kids):
            k.exec(f"echo {i} > /tmp/task/mine")
        for i, k in enumerate(kids):
            assert _lines(k.exec("cat /tmp/task/c /tmp/task/mine")) == ["later", str(i)]
        # ... and by id, as a group closed together.
        with c.group("busybox", 2, snapshot=snap) as g:
            assert [_lines(r) for r in g.exec_all("cat /tmp/task/a")] == [["base"], ["base"]]
        for k in kids + [two, sb]:
            k.close()
        # A snapshot id the store does not hold is the caller's mistake, not a lost sandbox.
        with pytest.raises(rollout.RolloutError) as e:
            c.open("busybox", snapshot="no-such-snapshot")
        assert not isinstance(e.value, rollout.SandboxLostError)


def test_asyncio_snapshot_fork_and_resume(env):
    async def main():
        async with rollout.AsyncClient(socket=env.sock) as c:
            sb = await c.open("busybox")
            await sb.exec("mkdir -p /tmp/task && echo one > /tmp/task/log")
            ckpt = await sb.snapshot(checkpoint=True)
            assert (sb.checkpoint, sb.checkpoint_request_id) == (ckpt, c._next_id - 1)
            await sb.put_file("/tmp/task/after", b"x")
            kids = await c.fork(ckpt, 4, profile="busybox")  # four opens at once
            outs = await asyncio.gather(*[k.exec("cat /tmp/task/log; ls /tmp/task") for k in kids])
            assert all(_lines(r) == ["one", "log"] for r in outs)
            # resume from a sandbox (not lost): from its checkpoint, with the steps after it.
            new, redo = await c.resume(sb)
            assert [(s.action, s.description) for s in redo] == [("put_file", "/tmp/task/after (1 bytes, mode 644)")]
            assert sb.closed
            assert _lines(await new.exec("ls /tmp/task")) == ["log"]
            await asyncio.gather(*[k.close() for k in kids + [new]])
    asyncio.run(main())


def test_resume_after_pool_kill(env):
    """Pool A holds the sandbox, checkpointing after every step; A is killed; the next step
    fails SANDBOX_LOST with the checkpoint; resume opens it on pool B: every step up to the
    checkpoint is there exactly once, the lost step is not, and it is handed back to redo."""
    with rollout.Client(socket=env.sock) as c:
        sb = c.open("busybox", checkpoint_every=1)  # on A: B is not running yet
        sb.exec("mkdir -p /tmp/task")
        for i in range(1, 5):
            sb.exec(f"echo step{i} >> /tmp/task/log")
            sb.put_file(f"/tmp/task/f{i}", str(i).encode())
        assert sb.checkpoint and sb.checkpoint_request_id == sb.steps[-1].request_id
        ckpt, ckpt_rid = sb.checkpoint, sb.checkpoint_request_id
        env.start_pool(1)
        env.kill_pool(0)
        with pytest.raises(rollout.SandboxLostError) as e:
            sb.exec("echo step5 >> /tmp/task/log")
        lost = e.value
        assert lost.status == Status.SANDBOX_LOST and lost.infra_failed
        assert (lost.checkpoint, lost.checkpoint_request_id) == (ckpt, ckpt_rid)
        assert lost.sandbox is sb
        env.wait_pool(0, False)
        new, redo = c.resume(lost)  # only B is up: the open goes there
        assert [s.description for s in redo] == ["echo step5 >> /tmp/task/log"]
        assert new.profile == "busybox" and new.checkpoint_every == 1 and new.origin == ckpt
        assert _lines(new.exec("cat /tmp/task/log")) == [f"step{i}" for i in range(1, 5)]
        assert _lines(new.exec("cat /tmp/task/f1 /tmp/task/f2 /tmp/task/f3 /tmp/task/f4; echo")) == ["1234"]
        new.exec(redo[0].description)  # the caller redoes it, once
        assert _lines(new.exec("cat /tmp/task/log")) == [f"step{i}" for i in range(1, 6)]
        assert new.checkpoint and new.checkpoint != ckpt  # B checkpoints it from here on
        new.close()
