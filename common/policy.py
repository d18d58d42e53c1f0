"""The policy every process runs: per-task encoder + actor, built from a spec, and its
CPU copy that acts on raw observations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from common.envs import TaskShape, task_shape
from common.messages import PolicySnapshot
from common.networks import Actor, build_actor
from common.normalizer import ObservationEncoder
from common.spec import Spec


class Policy:
    """Actor + encoder on the CPU; acts on raw observations of any task in the run."""

    def __init__(self, encoder: ObservationEncoder, actor: Actor) -> None:
        self.encoder, self.actor = encoder, actor
        self.version = 0

    def load(self, snapshot: PolicySnapshot) -> None:
        """Adopt the weights and normalizer statistics of ``snapshot``."""
        self.actor.load_state_dict(snapshot.actor)
        self.encoder.load_state_dict(snapshot.encoder)
        self.version = snapshot.version

    @torch.no_grad()
    def act(self, task: int, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of raw observations of ``task``."""
        x = torch.from_numpy(self.encoder.encode(task, obs, goal))
        return self.actor(x).numpy()


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
