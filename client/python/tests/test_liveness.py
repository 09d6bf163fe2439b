"""rolloutd dies under a client (RELIABILITY 24, docs/coordinator.md "never a hang"): every
pending call fails with a connection error within about a second, from a blocking client
stuck on a full submission ring and from an asyncio client with 200 requests in flight.
Each test has its own daemons, since it kills rolloutd."""
import asyncio
import threading
import time

import pytest

import rollout
from rollout import Status


def _assert_connection_lost(e: BaseException) -> None:
    assert isinstance(e, rollout.RolloutConnectionError), repr(e)
    assert isinstance(e, ConnectionError)
    assert e.status == Status.UNAVAILABLE and e.infra_failed
    assert e.code == rollout.Err.E_PEER_DEAD, e.code


def test_blocking_full_ring_when_rolloutd_dies(fresh_daemons):
    # One credit at the pool and 64 KiB rings: the first exec is dispatched, two more wait
    # in the submission ring and the next cannot fit, so exec_each sleeps on a full ring.
    d = fresh_daemons(rolloutd_extra="  ring_bytes: 65536\n  max_record: 32000",
                      pool_extra="  max_inflight: 1")
    c = rollout.Client(socket=d.sock)
    outcome = {}

    def worker():
        try:
            with c.group("default", 8) as g:
                outcome["stage"] = "submitting"
                g.exec_each(["sleep 5"] * 8, stdin=b"x" * 24000)
            outcome["result"] = "completed"
        except BaseException as e:  # the assertion is in the main thread
            outcome["error"] = e

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while "stage" not in outcome and th.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outcome.get("stage") == "submitting", outcome
    time.sleep(1.0)  # the ring fills at once: one exec runs, the rest cannot be read
    assert th.is_alive(), outcome
    d.rolloutd.kill()
    t0 = time.monotonic()
    th.join(10)
    assert not th.is_alive(), "a submit on a full ring kept retrying after rolloutd died"
    assert time.monotonic() - t0 < 3
    _assert_connection_lost(outcome.get("error"))
    # The connection is known dead: later calls fail at once instead of queueing forever.
    with pytest.raises(rollout.RolloutConnectionError):
        c.open("noop")
    c.close()


def test_asyncio_pending_fail_when_rolloutd_dies(fresh_daemons):
    d = fresh_daemons()

    async def main():
        async with rollout.AsyncClient(socket=d.sock) as c:
            sbs = await asyncio.gather(*[c.open("default") for _ in range(4)])
            tasks = [asyncio.ensure_future(sbs[i % 4].exec("sleep 5")) for i in range(200)]
            await asyncio.sleep(0.5)
            assert not any(t.done() for t in tasks)
            d.rolloutd.kill()
            t0 = time.monotonic()
            done, pending = await asyncio.wait(tasks, timeout=5)
            elapsed = time.monotonic() - t0
            assert not pending, f"{len(pending)} of 200 requests neither completed nor failed"
            assert elapsed < 2.0, elapsed
            for t in tasks:
                _assert_connection_lost(t.exception())
            # A request made after the death fails at once too.
            with pytest.raises(rollout.RolloutConnectionError):
                await asyncio.wait_for(sbs[0].exec("true"), 2)
    asyncio.run(main())


def test_asyncio_full_ring_when_rolloutd_dies(fresh_daemons):
    # The asyncio client waits for room in the ring inside the submitting coroutine; when
    # rolloutd dies there, that submit and every request in flight fail.
    d = fresh_daemons(rolloutd_extra="  ring_bytes: 65536\n  max_record: 32000",
                      pool_extra="  max_inflight: 1")
    outcome = {}

    async def main():
        async with rollout.AsyncClient(socket=d.sock) as c:
            sb = await c.open("default")
            threading.Timer(1.0, d.rolloutd.kill).start()
            tasks = [asyncio.ensure_future(sb.exec("sleep 5", stdin=b"x" * 1000)) for _ in range(400)]
            done, pending = await asyncio.wait(tasks, timeout=10)
            outcome["pending"] = len(pending)
            outcome["errors"] = [t.exception() for t in done]

    # In a thread: before the fix the loop itself spun forever and could not time out.
    th = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    th.start()
    th.join(20)
    assert not th.is_alive(), "the event loop kept retrying a full ring after rolloutd died"
    assert outcome["pending"] == 0
    assert len(outcome["errors"]) == 400
    for e in outcome["errors"]:
        _assert_connection_lost(e)
