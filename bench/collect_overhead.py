"""Collection overhead: env steps/s of one observer against a bare gymnasium step loop.

Both loops run in this process on one core (CPU affinity and one torch thread) on the
same task; the observer path includes the CPU policy forward, exploration noise, the
vector env and episode packing. The ratio observer / bare is the figure to compare.

    python bench/collect_overhead.py [--task FetchPush-v4] [--steps 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from common.envs import family_of
from common.policy import build_policy, task_shapes
from common.spec import validate_spec
from observer.rollout import Rollout


def bare_steps_per_s(task: str, steps: int) -> float:
    """A plain reset/step loop with random actions, one env."""
    env = family_of(task).make(task)
    env.reset(seed=0)
    horizon = env.spec.max_episode_steps
    start = time.perf_counter()
    for i in range(steps):
        env.step(env.action_space.sample())
        if (i + 1) % horizon == 0:
            env.reset()
    return steps / (time.perf_counter() - start)


def observer_steps_per_s(task: str, steps: int, num_envs: int) -> float:
    """The observer's Rollout: vector env + CPU policy + exploration, whole episodes."""
    spec = validate_spec({"tasks": [task], "budget": {"env_steps": steps}}, "bench")
    shapes = task_shapes(spec.tasks)
    rollout = Rollout(spec.tasks, shapes, build_policy(spec), num_envs, 0.2, 0.3)
    rng = np.random.default_rng(0)
    episodes = max(num_envs, steps // shapes[0].horizon)
    rollout.collect(task, num_envs, True, rng)  # build the vector env outside the timing
    start = time.perf_counter()
    batch = rollout.collect(task, episodes, True, rng)
    elapsed = time.perf_counter() - start
    rollout.close()
    return batch.env_steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="FetchPush-v4")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    result: dict = {"task": args.task, "steps": args.steps}
    bare = max(bare_steps_per_s(args.task, args.steps) for _ in range(args.repeats))
    result["bare_steps_per_s"] = round(bare, 1)
    for num_envs in (1, 2, 4):
        rate = max(observer_steps_per_s(args.task, args.steps, num_envs)
                   for _ in range(args.repeats))
        result[f"observer_{num_envs}env_steps_per_s"] = round(rate, 1)
        result[f"observer_{num_envs}env_ratio"] = round(rate / bare, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
