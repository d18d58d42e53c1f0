"""Offline evaluation of a checkpoint in this process: deterministic success rate per task."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.checkpoint import load_run_checkpoint
from common.policy import build_policy, task_shapes
from common.spec import validate_spec
from observer.rollout import Rollout


def evaluate_checkpoint(path: Path, episodes: int, seed: int) -> dict[str, float]:
    """``{task: success_rate}`` over ``episodes`` noise-free episodes per task."""
    state = load_run_checkpoint(path)
    spec = validate_spec(state["spec"], f"{path} (embedded spec)")
    policy = build_policy(spec)
    policy.actor.load_state_dict(state["learner"]["actor"])
    policy.encoder.load_state_dict(state["encoder"])
    rollout = Rollout(spec.tasks, task_shapes(spec.tasks), policy, spec.collect.envs_per_observer,
                      0.0, 0.0)
    rng = np.random.default_rng(seed)
    try:
        return {
            task: float(rollout.collect(task, episodes, False, rng).success.mean())
            for task in spec.tasks
        }
    finally:
        rollout.close()
