"""Builds the parts every process shares from a spec: task shapes, encoder, actor, policy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agent.batching import MultiTaskBatcher
from agent.her import HerSampler
from agent.networks import build_actor
from agent.normalizer import ObservationEncoder
from agent.replay import EpisodeReplay
from agent.spec import Spec
from agent.td3 import GradSync, TD3Learner
from observer.envs import TaskShape, family_of, task_shape
from observer.rollout import Policy


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_learner(
    spec: Spec, encoder: ObservationEncoder, grad_sync: GradSync | None = None
) -> TD3Learner:
    """The TD3 learner over the encoder's input, on the spec's device, with the spec's
    architecture, PCGrad if weighted so, the meta inner optimizer and the transfer lr scale."""
    return TD3Learner(
        encoder.input_dim, encoder.action_dim, len(spec.tasks), spec.learner,
        resolve_device(spec.learner.device), grad_sync,
        model=spec.model,
        project_gradients=spec.weighting.name == "pcgrad",
        optimizer=spec.meta.inner_optimizer if spec.meta.update != "none" else "adam",
        lr_scale=spec.transfer.lr_multiplier if spec.transfer.from_checkpoint else 1.0,
    )


def build_batcher(
    spec: Spec, encoder: ObservationEncoder, capacity: int, rng: np.random.Generator
) -> MultiTaskBatcher:
    """Per-task replays of ``capacity`` transitions, sampled with the spec's HER settings."""
    her = spec.replay.her
    replays = [EpisodeReplay(shape, capacity) for shape in task_shapes(spec.tasks)]
    samplers = [HerSampler(family_of(t).reward_fn(t), her.strategy, her.k) for t in spec.tasks]
    return MultiTaskBatcher(replays, samplers, encoder, rng)


def task_shapes(tasks: Sequence[str]) -> list[TaskShape]:
    """Shapes of each task, in order."""
    return [task_shape(task) for task in tasks]


def build_encoder(spec: Spec) -> ObservationEncoder:
    """Fresh per-task normalizers for the spec's tasks."""
    return ObservationEncoder(task_shapes(spec.tasks), spec.normalizer.eps, spec.normalizer.clip)


def build_policy(spec: Spec) -> Policy:
    """A CPU policy (encoder + actor) with the spec's network sizes."""
    encoder = build_encoder(spec)
    actor = build_actor(spec.model, encoder.input_dim, encoder.action_dim,
                        spec.learner.hidden_sizes, encoder.num_tasks)
    return Policy(encoder, actor)
