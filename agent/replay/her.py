"""Hindsight Experience Replay as a sampler: episodes + reward function in, batches out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from agent.replay.episode_replay import EpisodeReplay
from common.envs import RewardFn

Strategy = Literal["future", "final", "episode", "none"]


@dataclass
class Transitions:
    """Raw (unnormalized) transitions of one task."""

    obs: np.ndarray
    next_obs: np.ndarray
    goal: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    relabeled: np.ndarray


class HerSampler:
    """Samples transitions and replaces the goal of a ``k/(k+1)`` share with achieved goals."""

    def __init__(
        self, reward_fn: RewardFn, strategy: Strategy = "future", k: float = 4,
        moved_goal_share: float = 0.0,
    ) -> None:
        self.reward_fn, self.strategy = reward_fn, strategy
        self.relabel_prob = 0.0 if strategy == "none" else k / (k + 1)
        self.moved_goal_share = moved_goal_share

    def sample(self, replay: EpisodeReplay, n: int, rng: np.random.Generator) -> Transitions:
        """``n`` transitions (episodes by :meth:`EpisodeReplay.sample_slots`, steps uniformly),
        then relabeled."""
        if replay.episodes == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        horizon = replay.horizon
        ep = replay.sample_slots(n, self.moved_goal_share, rng)
        t = rng.integers(0, horizon, n)
        goal = replay.desired_goal[ep, t].copy()
        relabeled = rng.random(n) < self.relabel_prob
        if relabeled.any():
            source = self._goal_steps(t[relabeled], horizon, rng)
            goal[relabeled] = replay.achieved_goal[ep[relabeled], source]
        return Transitions(
            obs=replay.obs[ep, t],
            next_obs=replay.obs[ep, t + 1],
            goal=goal,
            action=replay.action[ep, t],
            reward=self.reward_fn(replay.achieved_goal[ep, t + 1], goal),
            relabeled=relabeled,
        )

    def _goal_steps(self, t: np.ndarray, horizon: int, rng: np.random.Generator) -> np.ndarray:
        """Index into ``achieved_goal`` (length horizon + 1) that supplies each new goal."""
        if self.strategy == "future":
            return t + 1 + (rng.random(t.shape) * (horizon - t)).astype(np.int64)
        if self.strategy == "final":
            return np.full_like(t, horizon)
        return rng.integers(0, horizon + 1, t.shape)
