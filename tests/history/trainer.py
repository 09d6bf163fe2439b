"""A Python trainer for the history checker: the blocking Client or the AsyncClient of
client/python, logging every submit and completion in the format of history_trainer.c
(S rid action sandbox t_ms / C rid status infra t_ms / E error t_ms / X rid sandbox /
R rid sandbox n / K t_ms / Q t_ms pending).

    trainer.py --socket S --log FILE [--async] [--id-base N] [--real-every K]

Noop episodes (open, execs of `true`, close) carry the volume; every K-th episode is a real
sandbox whose steps append their request id to /tmp/steps, read back before it closes.
SIGTERM ends the run after the episodes in progress."""
import argparse
import asyncio
import errno
import os
import signal
import sys
import time

import rollout
from rollout import lib

STEP = "echo @RID@ >> /tmp/steps"
READ = "cat /tmp/steps"


def now_ms():
    return int(time.monotonic() * 1000)


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1 << 16)

    def w(self, line):
        self.f.write(line + "\n")

    def flush(self):
        self.f.flush()


LOG = None


class Logged:
    """Mixed into Client / AsyncClient: every submit and every completion read from the ring
    is logged, whatever the binding does with it afterwards."""

    def _submit_open(self, rid, profile):
        super()._submit_open(rid, profile)
        LOG.w(f"S {rid} open:{profile} 0 {now_ms()}")

    def _submit_exec(self, rid, sandbox, cmd, *rest):
        what = "step" if cmd == STEP else "read" if cmd == READ else "exec"
        cmd = cmd.replace("@RID@", str(rid))
        super()._submit_exec(rid, sandbox, cmd, *rest)
        LOG.w(f"S {rid} {what} {sandbox} {now_ms()}")

    def _submit_close(self, rid, sandbox):
        super()._submit_close(rid, sandbox)
        LOG.w(f"S {rid} close {sandbox} {now_ms()}")

    def _drain(self):
        out = super()._drain()
        t = now_ms()
        for rid, r in out:
            LOG.w(f"C {rid} {rollout.status_name(r.status)} {int(r.infra_failed)} {t}")
        return out


class BClient(Logged, rollout.Client):
    def _wait(self, rid, timeout=None):
        # A lost completion must not hang the trainer: give up after 30 s (the checker
        # reports the request as lost).
        return super()._wait(rid, timeout or 30.0)


class AClient(Logged, rollout.AsyncClient):
    pass


def readback(sb_id, r, rid_hint):
    n = 0
    for tok in bytes(r.stdout).split():
        LOG.w(f"X {int(tok)} {sb_id}")
        n += 1
    LOG.w(f"R {rid_hint} {sb_id} {n}")


def conn_error(e):
    return isinstance(e, rollout.RolloutError) and e.errno not in (0, -errno.ETIMEDOUT)


class Stop:
    flag = False


# ---------------------------------------------------------------- blocking

def run_blocking(a):
    next_id = a.id_base
    client = None
    episode = 0
    while not Stop.flag:
        if client is None:
            try:
                client = BClient(socket=a.socket, name="py-blocking")
                client._next_id = next_id
                LOG.w(f"K {now_ms()}")
            except rollout.RolloutError:
                time.sleep(0.05)
                continue
        episode += 1
        real = a.real_every and episode % a.real_every == 0
        try:
            sb = client.open("default" if real else "noop")
            try:
                if real:
                    for _ in range(a.steps):
                        sb.exec(STEP)
                    rid = client._next_id
                    readback(sb.id, sb.exec(READ), rid)
                else:
                    for _ in range(a.execs):
                        sb.exec("true")
            finally:
                sb.close()
        except rollout.RolloutError as e:
            if conn_error(e):
                LOG.w(f"E {e} {now_ms()}")
                next_id = client._next_id
                client.close()
                client = None
            elif e.errno == -errno.ETIMEDOUT:
                next_id = client._next_id
            # a status (SANDBOX_LOST, NO_CAPACITY, ...): the episode ends, the next one starts
            if e.status in (rollout.Status.NO_CAPACITY, rollout.Status.UNAVAILABLE):
                time.sleep(0.05)
        LOG.flush()
    pending = 0
    LOG.w(f"Q {now_ms()} {pending}")
    LOG.flush()
    if client:
        client.close()


# ---------------------------------------------------------------- asyncio

async def run_async(a):
    next_id = a.id_base
    while not Stop.flag:
        try:
            client = AClient(socket=a.socket, name="py-async")
        except rollout.RolloutError:
            await asyncio.sleep(0.05)
            continue
        client._next_id = next_id
        LOG.w(f"K {now_ms()}")
        broken = asyncio.Event()
        why = []

        async def episodes(k):
            n = 0
            while not Stop.flag and not broken.is_set():
                n += 1
                real = a.real_every and (n + k) % a.real_every == 0
                try:
                    sb = await asyncio.wait_for(client.open("default" if real else "noop"), 30)
                except (rollout.RolloutError, asyncio.TimeoutError) as e:
                    if isinstance(e, rollout.RolloutError) and e.status in (
                            rollout.Status.NO_CAPACITY, rollout.Status.UNAVAILABLE):
                        await asyncio.sleep(0.05)
                    continue
                try:
                    if real:
                        for _ in range(a.steps):
                            await asyncio.wait_for(sb.exec(STEP), 30)
                        rid = client._next_id
                        readback(sb.id, await asyncio.wait_for(sb.exec(READ), 30), rid)
                    else:
                        # Pipelined within the episode: several execs in flight at once.
                        await asyncio.wait_for(asyncio.gather(*[sb.exec("true") for _ in range(a.execs)]), 30)
                except (rollout.RolloutError, asyncio.TimeoutError):
                    pass
                try:
                    await asyncio.wait_for(sb.close(), 30)
                except (rollout.RolloutError, asyncio.TimeoutError):
                    pass

        async def watchdog():
            # AsyncClient only wakes on its completion eventfd: a dead rolloutd never makes
            # it readable. Ask librollout about the peer (rollout_wait with no timeout).
            while not broken.is_set():
                await asyncio.sleep(0.1)
                LOG.flush()
                rc = lib().rollout_wait(client._handle, 0)
                if rc and rc != -errno.ETIMEDOUT:
                    why.append(rollout._strerror(rc))
                    broken.set()
                elif rc == 0:
                    client._dispatch()

        async with client:
            wd = asyncio.ensure_future(watchdog())
            tasks = [asyncio.ensure_future(episodes(k)) for k in range(a.coroutines)]
            done_all = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
            # On SIGTERM every episode finishes the one it is in (each await is bounded by
            # 30 s: a request not answered by then stays pending and the checker calls it lost).
            while not done_all.done() and not broken.is_set():
                await asyncio.sleep(0.05)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if why:
                # Logged only now that nothing more can be submitted on this connection:
                # the E line excuses exactly the requests sent on it.
                LOG.w(f"E {why[0].replace(' ', '_')} {now_ms()}")
            done_all.cancel()
            if not broken.is_set():
                client._dispatch()
            broken.set()
            await asyncio.gather(wd, return_exceptions=True)
            next_id = client._next_id
        LOG.flush()
    LOG.w(f"Q {now_ms()} 0")
    LOG.flush()


def main():
    global LOG
    p = argparse.ArgumentParser()
    p.add_argument("--socket", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--async", dest="use_async", action="store_true")
    p.add_argument("--id-base", type=int, default=1)
    p.add_argument("--real-every", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--execs", type=int, default=16)
    p.add_argument("--coroutines", type=int, default=32)
    a = p.parse_args()
    LOG = Log(a.log)
    signal.signal(signal.SIGTERM, lambda *_: setattr(Stop, "flag", True))
    if a.use_async:
        asyncio.run(run_async(a))
    else:
        run_blocking(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
