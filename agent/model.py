"""Builds the parts every process shares from a spec: task shapes, encoder, actor, policy."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from agent.networks import Actor
from agent.normalizer import ObservationEncoder
from agent.spec import Spec
from observer.envs import TaskShape, task_shape
from observer.rollout import Policy


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def task_shapes(tasks: Sequence[str]) -> list[TaskShape]:
    """Shapes of each task, in order."""
    return [task_shape(task) for task in tasks]


def build_encoder(spec: Spec) -> ObservationEncoder:
    """Fresh per-task normalizers for the spec's tasks."""
    return ObservationEncoder(task_shapes(spec.tasks), spec.normalizer.eps, spec.normalizer.clip)


def build_policy(spec: Spec) -> Policy:
    """A CPU policy (encoder + actor) with the spec's network sizes."""
    encoder = build_encoder(spec)
    actor = Actor(encoder.input_dim, encoder.action_dim, spec.learner.hidden_sizes)
    return Policy(encoder, actor)
