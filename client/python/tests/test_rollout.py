"""The Python binding against real daemons: blocking and asyncio paths, errors, cancellation,
1000 concurrent coroutines on one connection, and the group helper when one member fails."""
import asyncio

import pytest

import rollout
from rollout import Status


def test_blocking_path(daemons):
    with rollout.Client(socket=daemons) as c:
        with c.open("default") as sb:
            sb.put_file("task.py", b"import sys\nprint(sum(map(int, sys.stdin.read().split())))\n")
            r = sb.exec(["python3", "task.py"], stdin=b"1 2 3 4")
            assert r.status == Status.OK and r.exit_code == 0
            assert r.stdout == b"10\n"
            assert r.wall_us > 0
            r = sb.exec("echo $GREETING >&2; cd sub 2>/dev/null || mkdir sub; exit 3", env={"GREETING": "hi"})
            assert r.exit_code == 3 and r.stderr == b"hi\n" and not r.ok
            r = sb.exec("head -c 5000 /dev/zero", output_cap=100)
            assert len(r.stdout) == 100 and r.stdout_truncated
            v = sb.exec_view("head -c 100000 /dev/zero | tr '\\0' 'a'", output_cap=200000)
            assert isinstance(v.stdout, memoryview) and len(v.stdout) == 100000 and v.stdout[0] == ord("a")
            sb.exec("printf '\\000\\377binary' > b.bin")
            assert sb.get_file("b.bin") == b"\x00\xffbinary"


def test_errors_are_exceptions(daemons):
    with rollout.Client(socket=daemons) as c:
        with pytest.raises(rollout.RolloutError) as e:
            c.open("no-such-profile")
        assert e.value.status == Status.UNKNOWN_PROFILE and not e.value.infra_failed
        sb = c.open("default")
        with pytest.raises(rollout.RolloutError) as e:
            sb.exec("sleep 10", timeout=0.2)
        assert e.value.status == Status.TIMEOUT
        with pytest.raises(rollout.RolloutError) as e:
            sb.get_file("/etc/passwd")
        assert e.value.status == Status.PERMISSION_DENIED
        sb.close()
        with pytest.raises(rollout.RolloutError) as e:
            sb.exec("true") if not sb.closed else rollout.Sandbox(c, sb.id).exec("true")
        assert e.value.status == Status.NOT_FOUND
    with pytest.raises(rollout.RolloutError) as e:
        rollout.Client(socket="/nonexistent/rolloutd.sock")
    assert e.value.infra_failed


def test_asyncio_path(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            sb = await c.open("default")
            await sb.put_file("x.txt", b"abc")
            r = await sb.exec("wc -c < x.txt")
            assert r.stdout.strip() == b"3"
            assert await sb.get_file("x.txt") == b"abc"
            await sb.close()
    asyncio.run(main())


def test_thousand_coroutines(daemons):
    async def trajectory(c, i):
        sb = await c.open("noop")
        for _ in range(3):
            r = await sb.exec(f"echo {i}")
            assert r.status == Status.OK
        await sb.close()
        return i

    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            done = await asyncio.gather(*[trajectory(c, i) for i in range(1000)])
            assert sorted(done) == list(range(1000))
    asyncio.run(main())


def test_cancellation(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            sb = await c.open("default")
            task = asyncio.create_task(sb.exec("sleep 1"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The connection keeps working; the cancelled step's late result is dropped.
            r = await sb.exec("echo after")
            assert r.stdout == b"after\n"
            await sb.close()
    asyncio.run(main())


def test_group_when_one_member_fails(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with c.group("default", 4) as g:
                results = await g.exec_each(["echo 0", "sleep 30", "echo 2", "exit 7"], timeout=3)
                assert results[0].stdout == b"0\n"
                assert isinstance(results[1], rollout.RolloutError) and results[1].status == Status.TIMEOUT
                assert results[2].stdout == b"2\n"
                assert results[3].exit_code == 7
                ids = [sb.id for sb in g.sandboxes]
            # Every member is closed, also the one that failed.
            for i in ids:
                with pytest.raises(rollout.RolloutError) as e:
                    await rollout.AsyncSandbox(c, i).exec("true")
                assert e.value.status == Status.NOT_FOUND
    asyncio.run(main())
    with rollout.Client(socket=daemons) as c:
        with c.group("noop", 3) as g:
            rs = g.exec_all("true")
            assert [r.status for r in rs] == [Status.OK] * 3
