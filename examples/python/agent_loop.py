#!/usr/bin/python3
"""An agent loop in the shape RL frameworks use: one coroutine per trajectory, several turns,
each turn the "policy" picks a tool call that runs as a sandbox exec, and the observation
goes back into the trajectory. The policy here is a stand-in (a fixed plan per task); in a
trainer it is the model generating on the GPU.

    PYTHONPATH=client/python ROLLOUT_LIBRARY=build/client/librollout.so \\
        /usr/bin/python3 examples/python/agent_loop.py --socket /run/rolloutd/rolloutd.sock --trajectories 16
"""
import argparse
import asyncio
import time

import rollout

PLAN = [
    ("write", "solution.py", "def add(a, b):\n    return a + b\n"),
    ("exec", "python3 -c 'from solution import add; print(add(2, 3))'"),
    ("write", "test_solution.py", "from solution import add\nassert add(1, 1) == 2\nprint('passed')\n"),
    ("exec", "python3 test_solution.py"),
    ("exec", "grep -c return solution.py"),
]


async def trajectory(client: rollout.AsyncClient, i: int) -> dict:
    history = []
    async with await client.open("default") as sb:
        for turn, step in enumerate(PLAN):
            await asyncio.sleep(0)  # the policy would generate here
            if step[0] == "write":
                await sb.put_file(step[1], step[2].encode())
                history.append((turn, "wrote " + step[1]))
            else:
                r = await sb.exec(step[1], timeout=30)
                history.append((turn, r.stdout.decode(errors="replace").strip()))
    reward = 1.0 if history[-2][1] == "passed" else 0.0
    return {"trajectory": i, "turns": len(history), "reward": reward, "last": history[-1][1]}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default=None)
    ap.add_argument("--trajectories", type=int, default=16)
    args = ap.parse_args()
    t0 = time.time()
    async with rollout.AsyncClient(socket=args.socket) as client:
        results = await asyncio.gather(*[trajectory(client, i) for i in range(args.trajectories)])
    rewards = [r["reward"] for r in results]
    print(f"{len(results)} trajectories, {sum(r['turns'] for r in results)} turns in {time.time() - t0:.2f} s; "
          f"mean reward {sum(rewards) / len(rewards):.2f}")
    if min(rewards) < 1.0:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
