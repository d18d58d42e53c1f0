"""Per-task episode storage: a ring buffer of whole episodes of one task."""

from __future__ import annotations

import numpy as np

from observer.envs import TaskShape
from observer.messages import EpisodeBatch


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
        self.actions = np.zeros((self.capacity, t, shape.action_dim), np.float32)
        self.episodes = 0
        """Stored episodes (at most ``capacity``)."""
        self._next = 0

    @property
    def transitions(self) -> int:
        return self.episodes * self.horizon

    def add(self, batch: EpisodeBatch) -> None:
        """Store every episode of ``batch``, overwriting the oldest when full."""
        n = batch.num_episodes
        idx = (self._next + np.arange(n)) % self.capacity
        self.obs[idx] = batch.obs
        self.achieved_goal[idx] = batch.achieved_goal
        self.desired_goal[idx] = batch.desired_goal
        self.actions[idx] = batch.actions
        self._next = int((self._next + n) % self.capacity)
        self.episodes = min(self.episodes + n, self.capacity)
