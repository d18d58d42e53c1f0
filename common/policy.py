"""The policy every process runs: per-task encoder + actor, built from a spec, and its
CPU copy that acts on raw observations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from common.envs import TaskShape, task_shape
from common.messages import PolicySnapshot
from common.networks import Actor, GaussianActor, build_actor
from common.normalizer import ObservationEncoder
from common.spec import Spec


class Policy:
    """Actor + encoder on the CPU; acts on raw observations of any task in the run."""

    def __init__(self, encoder: ObservationEncoder, actor: Actor | GaussianActor) -> None:
        self.encoder, self.actor = encoder, actor
        self.version = 0

    def load(self, snapshot: PolicySnapshot) -> None:
        """Adopt the weights and normalizer statistics of ``snapshot``."""
        self.actor.load_state_dict(snapshot.actor)
        self.encoder.load_state_dict(snapshot.encoder)
        self.version = snapshot.version

    @torch.no_grad()
    def act(self, task: int, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Deterministic actions (of ``task``'s own size) for a batch of raw observations."""
        x = torch.from_numpy(self.encoder.encode(task, obs, goal))
        return self.actor(x).numpy()[:, : self.encoder.action_dims[task]]

    @property
    def stochastic(self) -> bool:
        """Whether the policy explores by sampling its own action distribution (SAC)."""
        return isinstance(self.actor, GaussianActor)

    @torch.no_grad()
    def sample(self, task: int, obs: np.ndarray, goal: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
        """Actions drawn from a stochastic policy, with the noise from ``rng`` (reproducible)."""
        x = torch.from_numpy(self.encoder.encode(task, obs, goal))
        size = self.encoder.action_dims[task]
        mean, log_std = (t.numpy()[:, :size] for t in self.actor.distribution(x))
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return np.tanh(mean + np.exp(log_std) * noise)


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
                        spec.learner.hidden_sizes, encoder.num_tasks,
                        stochastic=spec.learner.algo == "sac",
                        action_dims=encoder.action_dims)
    return Policy(encoder, actor)
