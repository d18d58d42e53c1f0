"""Builds the agent's parts from a spec: the learner and the per-task replays."""

from __future__ import annotations

import numpy as np
import torch

from agent.learn.actor_critic import ActorCriticLearner, GradSync
from agent.learn.sac import SACLearner
from agent.learn.td3 import DDPGLearner, TD3Learner
from agent.replay.batching import MultiTaskBatcher
from agent.replay.episode_replay import EpisodeReplay
from agent.replay.her import HerSampler
from common.envs import family_of
from common.normalizer import ObservationEncoder
from common.policy import task_shapes
from common.spec import Spec
from meta.weighting import projects_gradients

LEARNERS: dict[str, type[ActorCriticLearner]] = {
    "td3": TD3Learner, "ddpg": DDPGLearner, "sac": SACLearner}
"""The learner of each ``learner.algo``."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_learner(
    spec: Spec, encoder: ObservationEncoder, grad_sync: GradSync | None = None
) -> ActorCriticLearner:
    """The learner of ``learner.algo`` (TD3, DDPG or SAC) over the encoder's input, on the
    spec's device, with the spec's architecture, PCGrad if weighted so, the meta inner
    optimizer and the transfer lr scale."""
    return LEARNERS[spec.learner.algo](
        encoder.input_dim, encoder.action_dim, len(spec.tasks), spec.learner,
        resolve_device(spec.learner.device), grad_sync,
        model=spec.model,
        action_dims=encoder.action_dims,
        project_gradients=projects_gradients(spec.weighting.name),
        optimizer=spec.meta.inner_optimizer if spec.meta.update != "none" else "adam",
        lr_scale=spec.transfer.lr_multiplier if spec.transfer.from_checkpoint else 1.0,
    )


def build_batcher(
    spec: Spec, encoder: ObservationEncoder, capacity: int, rng: np.random.Generator
) -> MultiTaskBatcher:
    """Per-task replays of ``capacity`` transitions, sampled with the spec's HER settings."""
    replays = [EpisodeReplay(shape, capacity) for shape in task_shapes(spec.tasks)]
    samplers = [_sampler(spec, task) for task in spec.tasks]
    return MultiTaskBatcher(replays, samplers, encoder, rng)


def _sampler(spec: Spec, task: str) -> HerSampler:
    """The spec's HER settings for a goal-based task; uniform and never relabeled for a task
    whose family does not relabel (Meta-World)."""
    family = family_of(task)
    if not family.RELABELS_GOALS:
        return HerSampler(family.reward_fn(task), "none")
    her = spec.replay.her
    return HerSampler(family.reward_fn(task), her.strategy, her.k,
                      spec.replay.moved_goal_share_of(task))
