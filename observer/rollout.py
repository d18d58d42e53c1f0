"""Collect whole episodes with vectorized envs and a CPU copy of the policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from common.envs import EpisodeStepper, TaskShape, family_of
from common.messages import EpisodeBatch
from common.policy import Policy


def explore(
    actions: np.ndarray, rng: np.random.Generator, noise_std: float, random_eps: float
) -> np.ndarray:
    """Gaussian noise plus, with probability ``random_eps`` per row, a uniform random action."""
    noisy = np.clip(actions + noise_std * rng.standard_normal(actions.shape), -1.0, 1.0)
    random_rows = rng.random(actions.shape[0]) < random_eps
    noisy[random_rows] = rng.uniform(-1.0, 1.0, (int(random_rows.sum()), actions.shape[1]))
    return noisy.astype(np.float32)


def episode_seeds(rng: np.random.Generator, episodes: int, num_envs: int) -> list[int]:
    """Reset seeds of ``episodes`` episodes stepped ``num_envs`` at a time: the ones
    :meth:`Rollout.collect` uses for noise-free episodes (exploring ones draw noise too)."""
    seeds: list[int] = []
    while len(seeds) < episodes:
        width = min(num_envs, episodes - len(seeds))
        seeds += [int(s) for s in rng.integers(0, 2**31 - 1, width)]
    return seeds


class Rollout:
    """Steps one set of envs per (task, width) and returns :class:`EpisodeBatch` objects."""

    def __init__(
        self,
        tasks: Sequence[str],
        shapes: Sequence[TaskShape],
        policy: Policy,
        num_envs: int,
        noise_std: float,
        random_eps: float,
        grasped_start_share: Mapping[str, float] | None = None,
    ) -> None:
        self.tasks, self.shapes, self.policy = list(tasks), list(shapes), policy
        self.num_envs, self.noise_std, self.random_eps = num_envs, noise_std, random_eps
        self.grasped_start_share = dict(grasped_start_share or {})
        """Per task: share of exploring episodes that start with the object grasped."""
        self._envs: dict[tuple[str, int], EpisodeStepper] = {}

    def _stepper(self, task: str, width: int) -> EpisodeStepper:
        key = (task, width)
        if key not in self._envs:
            self._envs[key] = family_of(task).make_stepper(task, width)
        return self._envs[key]

    def collect(
        self, task: str, episodes: int, exploring: bool, rng: np.random.Generator
    ) -> EpisodeBatch:
        """``episodes`` whole episodes of ``task``; each reset gets a fresh seed from ``rng``."""
        parts = []
        remaining = episodes
        while remaining > 0:
            width = min(self.num_envs, remaining)
            parts.append(self._run_round(task, width, exploring, rng))
            remaining -= width
        return EpisodeBatch(
            task=task,
            **{k: np.concatenate([p[k] for p in parts]) for k in parts[0]},
            policy_version=self.policy.version,
        )

    def _run_round(
        self, task: str, width: int, exploring: bool, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        index = self.tasks.index(task)
        horizon = self.shapes[index].horizon
        env = self._stepper(task, width)
        seeds = episode_seeds(rng, width, width)
        share = self.grasped_start_share.get(task, 0.0) if exploring else 0.0
        obs = env.reset(seeds, rng.random(width) < share) if share > 0 else env.reset(seeds)
        observations, achieved = [obs["observation"]], [obs["achieved_goal"]]
        desired, actions = [], []
        success = np.zeros(width)
        for _ in range(horizon):
            goal = obs["desired_goal"]
            if exploring and self.policy.stochastic:
                action = self.policy.sample(index, obs["observation"], goal, rng)
            else:
                action = self.policy.act(index, obs["observation"], goal)
                if exploring:
                    action = explore(action, rng, self.noise_std, self.random_eps)
            obs, success = env.step(action)
            observations.append(obs["observation"])
            achieved.append(obs["achieved_goal"])
            desired.append(goal)
            actions.append(action)
        return {
            "obs": np.stack(observations, 1).astype(np.float32),
            "achieved_goal": np.stack(achieved, 1).astype(np.float32),
            "desired_goal": np.stack(desired, 1).astype(np.float32),
            "action": np.stack(actions, 1).astype(np.float32),
            "success": success > 0.5,
        }

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
