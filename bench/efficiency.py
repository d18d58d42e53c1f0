"""Box efficiency: a spec's env steps/s against what the box could do with no overhead.

In one invocation, on this machine:

1. the CPU time of one env step of each of the spec's tasks: gymnasium's wrapped
   ``env.step`` (random actions, a reset every episode), the observers' own stepper
   (``family.make_stepper``) and the physics alone (``mujoco.mj_step`` with the env's
   substeps: the floor for any stepper);
2. a plain single-thread PyTorch TD3 update at the spec's network and batch
   (``bench/learner_throughput.py``'s reference);
3. the spec itself, through ``main.py``, for ``--seconds`` after the learner's warm-up:
   env steps/s and the cores each process used.

With ``c`` cores, the ideal is ``c / (bare step + updates_per_env_step x plain update)``
env steps/s: every core stepping the wrapped env or making plain updates, nothing else.
The efficiency is the run's env steps/s over that ideal; above 1 only with an update or a
step cheaper than plain.

    python -m bench.efficiency [--spec specs/fetch_push.yaml] [--seconds 90]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from bench.cpu_profile import measure_running
from bench.distributed import QUIET
from bench.learner_throughput import PlainTD3, random_batch, rate
from common.envs import family_of, task_shape
from common.spec import Spec, load_spec

OUT = Path("bench/out/efficiency")
STEPS = 2000


def _cpu_ms_per_step(step, reset, horizon: int, steps: int = STEPS) -> float:
    """CPU milliseconds per ``step()`` over ``steps`` steps, ``reset()`` every ``horizon``."""
    start = time.process_time()
    for i in range(steps):
        if i % horizon == 0:
            reset(i)
        step()
    return (time.process_time() - start) / steps * 1e3


def step_costs(task: str) -> dict[str, float | None]:
    """CPU ms per env step of ``task``: gymnasium's wrapped env, our stepper, and the part
    of our stepper's time spent inside ``mujoco.mj_step`` (the physics floor; None for a
    family that is not stepped through it)."""
    import mujoco

    family, horizon = family_of(task), task_shape(task).horizon
    rng = np.random.default_rng(0)
    env = family.make(task)
    low, high = env.action_space.low, env.action_space.high

    def random_action(rows: tuple[int, ...] = ()) -> np.ndarray:
        return rng.uniform(low, high, (*rows, *low.shape)).astype(np.float32)

    wrapped = _cpu_ms_per_step(lambda: env.step(random_action()),
                               lambda i: env.reset(seed=i), horizon)
    env.close()
    physics_s = [0.0]
    mj_step = mujoco.mj_step

    def timed_mj_step(*args: object, **kwargs: object) -> None:
        start = time.process_time()
        mj_step(*args, **kwargs)
        physics_s[0] += time.process_time() - start

    stepper = family.make_stepper(task, 2)
    with mock.patch.object(mujoco, "mj_step", timed_mj_step):
        ours = _cpu_ms_per_step(lambda: stepper.step(random_action((2,))),
                                lambda i: stepper.reset([i, i + 1]), horizon, STEPS // 2) / 2
    stepper.close()
    physics = physics_s[0] / STEPS * 1e3 if physics_s[0] > 0 else None
    return {"wrapped_ms": round(wrapped, 3), "stepper_ms": round(ours, 3),
            "physics_ms": None if physics is None else round(physics, 3)}


def plain_update_ms(spec: Spec) -> float:
    """One plain single-thread TD3 update at the spec's network and batch, in ms."""
    torch.set_num_threads(1)
    plain, batch = PlainTD3(spec.learner), random_batch(spec.learner.batch_size)
    return 1e3 / max(rate(lambda: plain.update(batch), 3.0) for _ in range(3))


def run_rate(spec_path: str, seconds: float, warmup_s: float) -> dict:
    """The spec as shipped (budget aside) through ``main.py``: env steps/s, updates/s and
    cores per process over ``seconds`` once the learner has trained ``warmup_s``."""
    run_dir = OUT / Path(spec_path).stem
    command = [sys.executable, "main.py", "--spec", spec_path, "--run-dir", str(run_dir),
               *QUIET, "--set", "budget.env_steps=100000000"]
    usage, env_rate, update_rate = measure_running(command, run_dir, spec_path, seconds,
                                                   warmup_s)
    return {"env_steps_per_s": round(env_rate, 1), "updates_per_s": round(update_rate, 2),
            "cpu_cores": {label: round(sum(threads.values()), 2)
                          for label, threads in usage.items() if sum(threads.values()) >= 0.01}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="specs/fetch_push.yaml")
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    args = parser.parse_args()
    spec = load_spec(args.spec)
    OUT.mkdir(parents=True, exist_ok=True)
    costs = {task: step_costs(task) for task in spec.tasks}
    bare_ms = float(np.mean([c["wrapped_ms"] for c in costs.values()]))
    update_ms = plain_update_ms(spec)
    cores = os.cpu_count() or 1
    utd = spec.learner.updates_per_env_step
    ideal = cores / (bare_ms + utd * update_ms) * 1e3
    run = run_rate(args.spec, args.seconds, args.warmup_s)
    print(json.dumps({
        "spec": args.spec,
        "machine": f"{platform.processor() or platform.machine()}, {cores} cores, "
                   f"torch {torch.__version__}",
        "step_cpu_ms": costs,
        "plain_update_ms": round(update_ms, 2),
        "updates_per_env_step": utd,
        "ideal_env_steps_per_s": round(ideal, 1),
        **run,
        "efficiency": round(run["env_steps_per_s"] / ideal, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
