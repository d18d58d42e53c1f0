"""Do the box's cores slow each other down? Env stepping and learner updates, alone and at once.

Runs, each in its own single-thread process: a bare FetchPush ``env.step`` loop (what an
observer does), a plain TD3 update at batch 2048 (what the learner does), and a float32
matmul; first each alone, then an env loop beside each of the others, started together.
Prints, per round, each rate alone and the ratios beside the other: alone and together
back to back in every round, since this VM's speed drifts over minutes. Ratios near 1 mean
two independent cores; well below 1 means the cores share something (caches, memory
bandwidth, or a host's hyperthread siblings behind the VM's two vCPUs), which caps what
any split of the work over both cores can gain.

    python -m bench.co_running [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
from collections.abc import Callable
from multiprocessing.synchronize import Barrier

import torch

from bench.collect_overhead import bare_steps_per_s
from bench.learner_throughput import PlainTD3, matmul_peak_gflops, random_batch, rate
from common.spec import Learner


def env_steps_per_s(seconds: float) -> float:
    steps = int(1000 * seconds)  # about a second per thousand steps on this box
    return bare_steps_per_s("FetchPush-v4", steps)


def td3_updates_per_s(seconds: float) -> float:
    learner = PlainTD3(Learner(hidden_sizes=[256, 256, 256]))
    batch = random_batch(2048)
    return rate(lambda: learner.update(batch), seconds)


WORKLOADS: dict[str, Callable[[float], float]] = {
    "env_steps_per_s": env_steps_per_s,
    "td3_updates_per_s": td3_updates_per_s,
    "matmul_gflops": matmul_peak_gflops,
}


def _run(name: str, seconds: float, start: Barrier) -> float:
    torch.set_num_threads(1)
    start.wait()
    return WORKLOADS[name](seconds)


def together(names: list[str], seconds: float) -> list[float]:
    """Each workload in its own process, all started at the same moment."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(len(names))
        with ctx.Pool(len(names)) as pool:
            return pool.starmap(_run, [(n, seconds, start) for n in names])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.rounds):  # alone and together back to back: the host drifts
        alone = {name: together([name], args.seconds)[0] for name in WORKLOADS}
        row: dict[str, float] = {f"{name} alone": rate for name, rate in alone.items()}
        for other in ("td3_updates_per_s", "matmul_gflops"):
            env, beside = together(["env_steps_per_s", other], args.seconds)
            row[f"env ratio beside {other}"] = env / alone["env_steps_per_s"]
            row[f"{other} ratio beside env"] = beside / alone[other]
        rounds.append({k: round(v, 3) for k, v in row.items()})
        print(json.dumps(rounds[-1]), flush=True)
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "rounds": len(rounds)}))


if __name__ == "__main__":
    main()
