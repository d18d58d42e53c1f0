"""Per-task episode storage: a ring buffer of whole episodes of one task."""

from __future__ import annotations

import numpy as np

from common.envs import TaskShape
from common.messages import EpisodeBatch

FIELDS = ("obs", "achieved_goal", "desired_goal", "action")
"""The per-episode arrays a replay stores (as in :class:`EpisodeBatch`)."""


class EpisodeReplay:
    """Fixed-capacity ring of whole episodes; arrays are allocated once, up front."""

    def __init__(self, shape: TaskShape, capacity_transitions: int) -> None:
        self.shape = shape
        self.horizon = shape.horizon
        self.capacity = max(1, capacity_transitions // shape.horizon)
        t = shape.horizon
        self.obs = np.zeros((self.capacity, t + 1, shape.obs_dim), np.float32)
        self.achieved_goal = np.zeros((self.capacity, t + 1, shape.goal_dim), np.float32)
        self.desired_goal = np.zeros((self.capacity, t, shape.goal_dim), np.float32)
        self.action = np.zeros((self.capacity, t, shape.action_dim), np.float32)
        self.episodes = 0
        """Stored episodes (at most ``capacity``)."""
        self.added = 0
        """Episodes ever added; episode ``i`` lives in slot ``i % capacity`` while kept."""

    @property
    def transitions(self) -> int:
        return self.episodes * self.horizon

    def add(self, batch: EpisodeBatch) -> None:
        """Store every episode of ``batch``, overwriting the oldest when full."""
        n = batch.num_episodes
        idx = (self.added + np.arange(n)) % self.capacity
        for name in FIELDS:
            getattr(self, name)[idx] = getattr(batch, name)
        self.added += n
        self.episodes = min(self.episodes + n, self.capacity)

    def slots(self, k: np.ndarray) -> np.ndarray:
        """Ring slots of the ``k``-th oldest kept episodes (``0 <= k < episodes``)."""
        return (self.added - self.episodes + k) % self.capacity

    def episodes_since(self, start: int) -> dict[str, np.ndarray]:
        """Copies of the episodes added since global index ``start`` that are still kept."""
        first = max(start, self.added - self.episodes)
        idx = np.arange(first, self.added) % self.capacity
        return {name: getattr(self, name)[idx].copy() for name in FIELDS}
