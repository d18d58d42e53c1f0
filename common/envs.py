"""Environment families behind one small adapter: task ids, make, shapes, reward function.

Everything Fetch-specific lives here. Other families (Panda, Meta-World) add an adapter
with the same methods and register their task ids in :data:`FAMILIES`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import gymnasium as gym
import numpy as np

RewardFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class TaskShape:
    """Sizes of one task's flat observation, goal and action, and its episode length."""

    obs_dim: int
    goal_dim: int
    action_dim: int
    horizon: int


def _register_robotics() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")  # rendering is offscreen, display or not
    # gymnasium-robotics prints a notice about Adroit reward versions on import; we use no
    # Adroit env, so drop that notice instead of printing it once per process.
    from farama_notifications import notifications

    notifications.pop("gymnasium_robotics", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)


class FetchFamily:
    """gymnasium-robotics Fetch tasks (v4), sparse and dense."""

    TASKS = tuple(
        f"Fetch{name}{dense}-v4"
        for name in ("Reach", "Push", "PickAndPlace", "Slide")
        for dense in ("", "Dense")
    )

    def make(self, task: str) -> gym.Env:
        """One env; the caller seeds it on reset."""
        _register_robotics()
        return gym.make(task)

    def make_rendering(self, task: str, size: int) -> gym.Env:
        """One env whose ``render()`` returns ``size`` x ``size`` RGB frames, offscreen."""
        _register_robotics()
        return gym.make(task, render_mode="rgb_array", width=size, height=size)

    def make_vector(self, task: str, num_envs: int) -> gym.vector.VectorEnv:
        """A synchronous vector env without autoreset: episodes are stepped whole."""
        _register_robotics()
        return gym.make_vec(
            task,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.DISABLED},
        )

    def reward_fn(self, task: str) -> RewardFn:
        """The env's own vectorized ``compute_reward`` (through ``env.unwrapped``)."""
        compute = self.make(task).unwrapped.compute_reward

        def reward(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
            return np.asarray(compute(achieved_goal, desired_goal, None), dtype=np.float32)

        return reward


FAMILIES = {task: FetchFamily() for task in FetchFamily.TASKS}


def known_task_ids() -> tuple[str, ...]:
    """Every env id an adapter can make."""
    return tuple(FAMILIES)


def family_of(task: str) -> FetchFamily:
    """The adapter that owns ``task``."""
    try:
        return FAMILIES[task]
    except KeyError:
        raise ValueError(f"unknown env id {task!r}") from None


@cache
def task_shape(task: str) -> TaskShape:
    """Shapes of ``task`` read from a freshly made env."""
    env = family_of(task).make(task)
    space = env.observation_space
    shape = TaskShape(
        obs_dim=space["observation"].shape[0],
        goal_dim=space["desired_goal"].shape[0],
        action_dim=env.action_space.shape[0],
        horizon=env.spec.max_episode_steps,
    )
    env.close()
    return shape
