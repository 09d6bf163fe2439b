#!/usr/bin/python3
"""Episodes in a container image, GRPO style: a repository task (scripts/mkimage demo: a
small shell project in /testbed whose test suite fails), one shared setup step in one
sandbox, a snapshot of it, then a group of sandboxes forked from that snapshot in which each
episode's "policy" (a stand-in for the model) edits the code and runs the tests. The reward
is the test suite's verdict. A checkpointed episode is then resumed after its sandbox is
closed under it, the way a trainer continues a task whose sandbox was lost.

    PYTHONPATH=client/python ROLLOUT_LIBRARY=build/client/librollout.so \\
        /usr/bin/python3 examples/python/env_demo.py --socket /run/rolloutd/rolloutd.sock
"""
import argparse
import asyncio
import statistics
import sys
import time

import rollout

# What the policies of a group try: each a one-line edit of /testbed/calc.sh. Only one fixes
# the bug (the loop of `fact` stops one short); the others are plausible, and wrong.
EDITS = [
    "s/-lt/-le/",
    "s/-lt/-ge/",
    "s/r=1/r=0/",
    "s/i=1/i=0/",
    "s/-lt/-le/",
    "s/-lt/-gt/",
    "s/i=1/i=2/",
    "s/-lt/-le/",
]


async def episode(sb: rollout.AsyncSandbox, i: int, edit: str) -> dict:
    """Three turns: look at the code, edit it, run the tests."""
    lat = []
    t = time.perf_counter()
    look = await sb.exec("grep -n 'while' calc.sh", timeout=30)
    lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    await sb.exec(["sed", "-i", edit, "calc.sh"], timeout=30)
    lat.append(time.perf_counter() - t)
    t = time.perf_counter()
    try:
        tests = await sb.exec("./run_tests.sh", timeout=3)
        verdict = (tests.stdout + tests.stderr).decode(errors="replace").strip().splitlines()[-1:]
        reward = 1.0 if tests.exit_code == 0 else 0.0
    except rollout.RolloutError as e:  # an edit can make the code hang: no reward
        if e.status != rollout.Status.TIMEOUT:
            raise
        verdict, reward = ["the tests timed out"], 0.0
    lat.append(time.perf_counter() - t)
    return {
        "episode": i,
        "edit": edit,
        "saw": look.stdout.decode(errors="replace").strip().splitlines()[:1],
        "reward": reward,
        "tests": verdict,
        "latencies": lat,
    }


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=None)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--group", type=int, default=8)
    args = ap.parse_args()
    async with rollout.AsyncClient(socket=args.socket, name="env-demo") as client:
        return await run(client, args)


async def run(client: rollout.AsyncClient, args) -> int:
    failures = 0

    # The shared setup: one sandbox of the image, the repository's tests run once (they
    # fail), a tool installed under /usr/local (the image's root is writable), a note left.
    t0 = time.perf_counter()
    setup = await client.open(args.profile)
    t_open = time.perf_counter() - t0
    before = await setup.exec("./run_tests.sh", timeout=30)
    print(f"setup: sandbox opened in {t_open * 1000:.1f} ms; tests before any edit: exit "
          f"{before.exit_code}: {before.stdout.decode(errors='replace').strip().splitlines()[-1:]}")
    await setup.put_file("/usr/local/bin/score",
                         b"#!/bin/sh\ncd /testbed && ./run_tests.sh >/dev/null 2>&1 && echo 1 || echo 0\n",
                         mode=0o755)
    await setup.exec("echo 'prepared by the shared setup' > /testbed/NOTES", timeout=30)

    t0 = time.perf_counter()
    snap = await setup.snapshot()
    t_snap = time.perf_counter() - t0
    print(f"setup: snapshot {snap} in {t_snap * 1000:.1f} ms")

    # The group: every fork starts from the snapshot (the image's layers, the snapshot's
    # layer, a fresh writable layer): nothing is copied.
    t0 = time.perf_counter()
    forks = await client.fork(snap, args.group, profile=args.profile)
    t_fork = time.perf_counter() - t0
    print(f"group: {len(forks)} sandboxes forked from the snapshot in {t_fork * 1000:.1f} ms")

    results = await asyncio.gather(*[episode(sb, i, EDITS[i % len(EDITS)]) for i, sb in enumerate(forks)])
    for r in results:
        print(f"  episode {r['episode']}: edit {r['edit']:<12} reward {r['reward']:.0f}  {r['tests']}")

    # Each fork wrote only its own layer: the setup sandbox and the siblings are untouched.
    note = await forks[0].exec("cat /testbed/NOTES && command -v score", timeout=30)
    sibling = await forks[1].exec("grep -c -- '-le' calc.sh || true", timeout=30)
    parent = await setup.exec("./run_tests.sh >/dev/null 2>&1; echo $?", timeout=30)
    isolated = note.exit_code == 0 and parent.stdout.strip() == b"1" and sibling.stdout.strip() == b"0"
    print(f"isolation: forks see the setup ({note.stdout.decode().splitlines()[0]!r}); the setup "
          f"sandbox still fails its tests, fork 1 does not see fork 0's fix: {isolated}")
    if not isolated:
        failures += 1

    # Resume: an episode with a checkpoint after every step continues from its last
    # checkpoint in a new sandbox, as a trainer does when a pool dies under it (the
    # SandboxLostError names the checkpoint; here the sandbox itself does). Nothing is re-run
    # by the system: the steps after the checkpoint come back to redo.
    ep = await client.open(args.profile, snapshot=snap, checkpoint_every=1)
    await ep.exec(["sed", "-i", "s/-lt/-le/", "calc.sh"], timeout=30)
    await ep.exec("echo edited >> /testbed/NOTES", timeout=30)
    ckpt = ep.checkpoint
    t0 = time.perf_counter()
    new, redo = await client.resume(ep)
    t_resume = time.perf_counter() - t0
    check = await new.exec("./run_tests.sh >/dev/null 2>&1; echo $?; grep -c edited NOTES", timeout=30)
    resumed_ok = check.stdout.split() == [b"0", b"1"]
    print(f"resume: reopened from checkpoint {ckpt} in {t_resume * 1000:.1f} ms; the fix and the note "
          f"are there: {resumed_ok}; steps to redo: {len(redo)}")
    if not resumed_ok:
        failures += 1

    for sb in forks + [setup, new]:
        await sb.close()

    lat = sorted(x for r in results for x in r["latencies"])
    rewards = [r["reward"] for r in results]
    expected = [1.0 if EDITS[i % len(EDITS)] == "s/-lt/-le/" else 0.0 for i in range(len(results))]
    if rewards != expected:
        failures += 1
    print()
    print("rollout environment demo summary")
    print(f"  image              {args.profile} (scripts/mkimage demo): an overlay root per sandbox")
    print(f"  snapshot           {t_snap * 1000:.1f} ms after the shared setup")
    print(f"  fork               {len(forks)} sandboxes in {t_fork * 1000:.1f} ms")
    print(f"  episodes           {len(results)}, 3 steps each; rewards {rewards} "
          f"(mean {statistics.mean(rewards):.2f}; {'as expected' if rewards == expected else 'UNEXPECTED'})")
    print(f"  step latency       p50 {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
    print(f"  resume             {t_resume * 1000:.1f} ms from a checkpoint, {'ok' if resumed_ok else 'FAILED'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
