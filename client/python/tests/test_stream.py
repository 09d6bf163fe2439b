"""Streamed exec output and signals to running commands, against real daemons.

The commands wait for a signal from the test instead of sleeping: a chunk that arrives
while the command still waits proves the output was streamed, not read at the end."""
import asyncio
import signal

import rollout

# Prints, then waits until SIGTERM, which it answers on stderr and exits 3.
# (The loop's stderr is muted so the shell's "Terminated" note for sleep stays out.)
WAITS_FOR_TERM = ("exec 3>&2; trap 'echo got-term >&3; exit 3' TERM; echo first; "
                  "while :; do sleep 0.02; done 2>/dev/null")


def run(coro):
    return asyncio.run(coro)


def test_chunks_arrive_while_the_command_runs(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                it = await sb.exec(WAITS_FOR_TERM, stream=True, timeout=10)
                seen = []
                async for name, data in it:
                    seen.append((name, data))
                    if data == b"first\n":
                        # The command cannot end by itself: this chunk was streamed.
                        assert await it.signal(signal.SIGTERM) is True
                r = await it.wait()
                assert it.result is r
                assert seen == [("stdout", b"first\n"), ("stderr", b"got-term\n")]
                assert (r.exit_code, r.signal) == (3, 0)
                # The completion holds the whole output, as without streaming.
                assert (r.stdout, r.stderr) == (b"first\n", b"got-term\n")
                assert it.result is r
    run(main())


def test_streamed_bytes_equal_the_result(daemons):
    """Much output fast: chunks are coalesced (and any dropped record refilled from the
    completion), so the streamed bytes are exactly the result's, in order."""
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                it = await sb.exec("seq 1 100000; seq 1 5000 >&2", stream=True, output_cap=4 << 20)
                out, err, n = bytearray(), bytearray(), 0
                async for name, data in it:
                    n += 1
                    (out if name == "stdout" else err).extend(data)
                r = await it.wait()
                expect = b"".join(b"%d\n" % i for i in range(1, 100001))
                assert bytes(out) == r.stdout == expect
                assert bytes(err) == r.stderr == b"".join(b"%d\n" % i for i in range(1, 5001))
                assert n >= 2
    run(main())


def test_kill_a_running_command_and_cancel_a_queued_one(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                running = await sb.exec("echo up; while :; do sleep 0.02; done", stream=True, timeout=10)
                # Queued behind it (one action at a time per sandbox): would leave a mark.
                queued = asyncio.ensure_future(sb.exec("touch ran-after", check_status=False))
                async for _, data in running:
                    assert data == b"up\n"
                    break
                await asyncio.sleep(0)  # let the queued exec be submitted
                # The queued exec is cancelled without running; then the running one is killed.
                assert await sb.signal(running.request_id + 1) is True
                q = await queued
                assert q.status == rollout.Status.CANCELLED, q
                assert await running.kill() is True
                r = await running.wait()
                assert r.signal == signal.SIGKILL
                # An ended command is not found; the sandbox lives on and the mark is absent.
                assert await sb.signal(running.request_id) is False
                assert await sb.signal(0) is False
                probe = await sb.exec("echo alive; test -e ran-after; echo $?")
                assert probe.stdout == b"alive\n1\n"
    run(main())


def test_iterate_without_await(daemons):
    """``async for`` straight over exec(..., stream=True); the result is there after."""
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                it = sb.exec("echo a; echo b >&2; exit 2", stream=True)
                got = [chunk async for chunk in it]
                assert sorted(got) == [("stderr", b"b\n"), ("stdout", b"a\n")]
                assert it.result.exit_code == 2
                assert (await sb.exec("echo plain")).stdout == b"plain\n"
    run(main())


def test_blocking_on_output(daemons):
    with rollout.Client(socket=daemons) as c:
        with c.open("default") as sb:
            got = []
            r = sb.exec("for i in 1 2 3; do echo $i; done; echo e >&2",
                        on_output=lambda name, data: got.append((name, data)))
            joined = {"stdout": b"", "stderr": b""}
            for name, data in got:
                joined[name] += data
            assert joined == {"stdout": b"1\n2\n3\n", "stderr": b"e\n"}
            assert (r.stdout, r.stderr) == (b"1\n2\n3\n", b"e\n")
            # Without on_output nothing is streamed and nothing changes.
            assert sb.exec("echo plain").stdout == b"plain\n"


def test_waiting_does_not_spin(daemons):
    """An asyncio client waiting for a slow command sleeps: the wake-up fd is drained when
    the client re-arms, so the event loop is not woken again and again for nothing."""
    import time

    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                await sb.exec("true")  # a completion has woken the fd once
                cpu = time.process_time()
                r = await sb.exec("sleep 1")
                assert r.exit_code == 0
                return time.process_time() - cpu
    spent = run(main())
    assert spent < 0.3, f"the client used {spent:.2f} s of CPU waiting 1 s"
