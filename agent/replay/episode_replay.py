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
        self.goal_motion = np.zeros(self.capacity, np.float64)
        """Path length of each slot's achieved goal over its episode (0 for empty slots)."""
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
        self.goal_motion[idx] = np.linalg.norm(np.diff(batch.achieved_goal, axis=1), axis=-1).sum(1)
        self.added += n
        self.episodes = min(self.episodes + n, self.capacity)

    def slots(self, k: np.ndarray) -> np.ndarray:
        """Ring slots of the ``k``-th oldest kept episodes (``0 <= k < episodes``)."""
        return (self.added - self.episodes + k) % self.capacity

    def keep_newest(self, episodes: int) -> None:
        """Forget all but the newest ``episodes`` kept episodes."""
        self.episodes = min(self.episodes, episodes)
        kept = self.slots(np.arange(self.episodes))
        motion = self.goal_motion[kept]
        self.goal_motion[:] = 0
        self.goal_motion[kept] = motion

    def sample_slots(self, n: int, moved_share: float, rng: np.random.Generator) -> np.ndarray:
        """Slots of ``n`` kept episodes: a ``moved_share`` of them drawn in proportion to how
        far the episode's achieved goal travelled, the rest uniformly.

        Where nothing moved yet (or ``moved_share`` is 0) every draw is uniform.
        """
        uniform = self.slots(rng.integers(0, self.episodes, n))
        if moved_share == 0:
            return uniform
        motion = self.goal_motion.copy()  # one snapshot: episodes may arrive meanwhile
        cdf = np.cumsum(motion)
        if cdf[-1] <= 0:
            return uniform
        moved = rng.random(n) < moved_share
        picks = np.searchsorted(cdf, rng.random(int(moved.sum())) * cdf[-1], side="right")
        last_moving = np.flatnonzero(motion)[-1]  # where rounding up would land
        uniform[moved] = np.minimum(picks, last_moving)
        return uniform

    def episodes_since(self, start: int) -> dict[str, np.ndarray]:
        """Copies of the episodes added since global index ``start`` that are still kept."""
        first = max(start, self.added - self.episodes)
        idx = np.arange(first, self.added) % self.capacity
        return {name: getattr(self, name)[idx].copy() for name in FIELDS}
