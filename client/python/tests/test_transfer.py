"""Transfers over the ring's max_record: requests and results go in pieces, whatever
max_record is, with the same one-completion guarantee."""
import asyncio
import hashlib
import os

import pytest

import rollout


def test_32mib_put_and_get(daemons):
    data = os.urandom(32 << 20)
    with rollout.Client(socket=daemons) as c:
        with c.open("default") as sb:
            sb.put_file("big.bin", data)
            # The sandbox sees exactly what was sent.
            r = sb.exec(["sha256sum", "big.bin"])
            assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
            assert sb.get_file("big.bin") == data
            # max_bytes still caps a get: the beginning, and OUTPUT_LIMIT.
            with pytest.raises(rollout.RolloutError) as e:
                sb.get_file("big.bin", max_bytes=1000)
            assert e.value.status == rollout.Status.OUTPUT_LIMIT


def test_big_exec_output_and_async(daemons):
    async def main():
        async with rollout.AsyncClient(socket=daemons) as c:
            async with await c.open("default") as sb:
                # 3 MB of stdout: a result three times max_record.
                r = await sb.exec("head -c 3000000 /dev/zero | tr '\\0' x", output_cap=4 << 20)
                assert r.stdout == b"x" * 3000000
                # Several big transfers in flight at once, each whole.
                blobs = [os.urandom((3 << 20) + i) for i in range(3)]
                await asyncio.gather(*(sb.put_file(f"f{i}", b) for i, b in enumerate(blobs)))
                got = await asyncio.gather(*(sb.get_file(f"f{i}") for i in range(3)))
                assert got == blobs
    asyncio.run(main())


def test_over_max_transfer_is_refused(daemons):
    with rollout.Client(socket=daemons) as c:
        with c.open("default") as sb:
            with pytest.raises(rollout.RolloutError) as e:
                sb.put_file("huge", bytes(49 << 20))
            assert e.value.status == rollout.Status.BAD_REQUEST
            assert "max_transfer_mb" in str(e.value)
            # Nothing was written, and the connection still serves.
            assert sb.exec("ls huge 2>/dev/null; echo done").stdout == b"done\n"


def test_small_max_record(fresh_daemons):
    """A 64 KiB max_record: an 8 MiB file is 130 pieces each way."""
    d = fresh_daemons(rolloutd_extra="  ring_bytes: 262144\n  max_record: 65536")
    data = os.urandom(8 << 20)
    with rollout.Client(socket=d.sock) as c:
        with c.open("default") as sb:
            sb.put_file("b", data)
            assert sb.get_file("b") == data
            assert sb.exec("wc -c < b").stdout == b"%d\n" % len(data)
