"""Offline evaluation of a checkpoint in this process: deterministic success rate per task,
optionally with a video of the episodes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from agent.checkpoint import load_run_checkpoint
from agent.report.video import record_video
from common.messages import EpisodeBatch
from common.policy import Policy, build_policy, task_shapes
from common.spec import Spec, validate_spec
from observer.rollout import Rollout, episode_seeds


def load_policy(path: Path) -> tuple[Spec, Policy]:
    """The spec a checkpoint was trained with and its policy (CPU)."""
    state = load_run_checkpoint(path)
    spec = validate_spec(state["spec"], f"{path} (embedded spec)")
    policy = build_policy(spec)
    policy.actor.load_state_dict(state["learner"]["actor"])
    policy.encoder.load_state_dict(state["encoder"])
    return spec, policy


def evaluate_checkpoint(path: Path, episodes: int, seed: int,
                        video_dir: Path | None = None) -> dict[str, float]:
    """``{task: success_rate}`` over ``episodes`` noise-free episodes per task; with
    ``video_dir``, the same episodes (the same reset seeds) are rendered one after the other
    into ``video_dir/<task>.mp4``."""
    spec, policy = load_policy(path)
    if video_dir is not None:
        rng = np.random.default_rng(seed)
        width = spec.collect.envs_per_observer
        rates = {}
        for task in spec.tasks:
            video = video_dir / f"{task}.mp4"
            seeds = episode_seeds(rng, episodes, width)
            rates[task] = float(np.mean(record_video(policy, list(spec.tasks), task, seeds,
                                                     video)))
            print(f"video: {video}", file=sys.stderr)
        return rates
    return {batch.task: float(batch.success.mean())
            for batch in evaluation_batches(spec, policy, episodes, seed)}


def evaluation_batches(spec: Spec, policy: Policy, episodes: int,
                       seed: int) -> Iterator[EpisodeBatch]:
    """The episodes :func:`evaluate_checkpoint` scores: ``episodes`` noise-free episodes of
    each task in the spec's order, their reset seeds drawn from one generator seeded with
    ``seed``. Close the iterator when stopping early (its envs close with it)."""
    rng = np.random.default_rng(seed)
    rollout = Rollout(spec.tasks, task_shapes(spec.tasks), policy,
                      spec.collect.envs_per_observer, 0.0, 0.0)
    try:
        for task in spec.tasks:
            yield rollout.collect(task, episodes, False, rng)
    finally:
        rollout.close()
