"""Environment families behind one small adapter: task ids, make, shapes, reward function.

Everything family-specific lives here: Fetch (gymnasium-robotics), Panda (panda-gym) and
Meta-World. A family is a :class:`GoalEnvFamily`; :func:`family_of` finds a task's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any, Protocol, SupportsFloat

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


def _offscreen_mujoco() -> None:
    """Render offscreen, display or not (before MuJoCo is first imported)."""
    os.environ.setdefault("MUJOCO_GL", "egl")


def _register_robotics() -> None:
    _offscreen_mujoco()
    # gymnasium-robotics prints a notice about Adroit reward versions on import; we use no
    # Adroit env, so drop that notice instead of printing it once per process.
    from farama_notifications import notifications

    notifications.pop("gymnasium_robotics", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)


ASSETS = Path(__file__).parent / "assets"
"""Files a family needs that its own package lacks."""


@contextlib.contextmanager
def _native_stdout_silenced() -> Iterator[None]:
    """Drop what native code prints to file descriptor 1 while it runs (pybullet prints its
    connection arguments for every env it makes)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@cache
def _register_panda() -> None:
    """Import panda-gym (registers its envs) and point its texture lookups at
    :data:`ASSETS`: the panda-gym 3.0.7 wheel lacks the ``colored_cube.png`` PandaFlip
    loads (panda-gym issue #71); the texture is only drawn."""
    with _native_stdout_silenced():
        import panda_gym
        import panda_gym.assets

    packaged = Path(panda_gym.assets.get_data_path())
    if not (packaged / "colored_cube.png").is_file():
        panda_gym.assets.get_data_path = lambda: str(ASSETS)
    gym.register_envs(panda_gym)


class RunsFullEpisodes(gym.Wrapper):
    """Never ends an episode before its time limit: panda-gym ends one on success, Fetch never
    does. With this, every task's episodes have their fixed horizon (HER's data layout) and
    success is judged at the last step for both families; a policy learns to stay at the
    goal, as it does on Fetch."""

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, False, truncated, info


class EpisodeStepper(Protocol):
    """Several envs of one task, reset and stepped together through whole episodes (the
    caller keeps the time limit). Observations come as a dict of batched arrays
    (``observation``, ``achieved_goal``, ``desired_goal``)."""

    def reset(self, seeds: Sequence[int], grasped: Sequence[bool] | None = None
              ) -> dict[str, np.ndarray]:
        """Each env reset with its seed; those flagged in ``grasped`` start with the object
        held (Fetch tasks of :attr:`FetchFamily.GRASPABLE` only)."""
        ...

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One step of every env: the observations and ``info["is_success"]`` per env."""
        ...

    def close(self) -> None:
        ...


class VectorStepper:
    """:class:`EpisodeStepper` over a gymnasium vector env without autoreset."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        self.env = env

    def reset(self, seeds: Sequence[int], grasped: Sequence[bool] | None = None
              ) -> dict[str, np.ndarray]:
        if grasped is not None and any(grasped):
            raise ValueError("a grasped start needs a Fetch object task's stepper")
        return self.env.reset(seed=list(seeds))[0]

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        obs, _, _, _, info = self.env.step(actions)
        return obs, np.asarray(info["is_success"])

    def close(self) -> None:
        self.env.close()


class GoalEnvFamily:
    """Goal-based gymnasium tasks: dict observations (``observation``, ``achieved_goal``,
    ``desired_goal``), ``info["is_success"]`` and a vectorized ``compute_reward``."""

    TASKS: tuple[str, ...] = ()
    RELABELS_GOALS = True
    """Whether HER may replace the desired goal of a stored transition."""
    WRAPPERS: tuple[Callable[[gym.Env], gym.Wrapper], ...] = ()
    """Applied, in order, to every env the family makes."""

    def register(self) -> None:
        """Make the family's env ids known to gymnasium (idempotent)."""
        raise NotImplementedError

    def _constructing(self) -> contextlib.AbstractContextManager:
        """Context in which the family's envs are made."""
        return contextlib.nullcontext()

    def make(self, task: str) -> gym.Env:
        """One env; the caller seeds it on reset."""
        self.register()
        with self._constructing():
            return self._wrapped(gym.make(task))

    def _wrapped(self, env: gym.Env) -> gym.Env:
        for wrapper in self.WRAPPERS:
            env = wrapper(env)
        return env

    def make_rendering(self, task: str, size: int) -> gym.Env:
        """One env whose ``render()`` returns ``size`` x ``size`` RGB frames, offscreen."""
        self.register()
        with self._constructing():
            return self._wrapped(gym.make(task, render_mode="rgb_array",
                                          **self._frame_size(size)))

    def _frame_size(self, size: int) -> dict[str, int]:
        return {"width": size, "height": size}

    def make_vector(self, task: str, num_envs: int) -> gym.vector.VectorEnv:
        """A synchronous vector env without autoreset: episodes are stepped whole."""
        self.register()
        with self._constructing():
            return gym.make_vec(
                task,
                num_envs=num_envs,
                vectorization_mode="sync",
                vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.DISABLED},
                wrappers=self.WRAPPERS,
            )

    def make_stepper(self, task: str, num_envs: int) -> EpisodeStepper:
        """``num_envs`` envs of ``task`` for whole episodes (the observers' collection)."""
        return VectorStepper(self.make_vector(task, num_envs))

    def reward_fn(self, task: str) -> RewardFn:
        """The env's own ``compute_reward`` (through ``env.unwrapped``) over rows of goals;
        row by row where the env's batched answer has the wrong shape (PandaFlip's
        ``np.inner`` of two batches is their outer product). The env is closed at once:
        ``compute_reward`` reads only its thresholds, never the simulation."""
        env = self.make(task)
        compute = env.unwrapped.compute_reward
        env.close()

        def reward(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
            batched = np.asarray(compute(achieved_goal, desired_goal, {}), dtype=np.float32)
            if batched.shape == achieved_goal.shape[:-1]:
                return batched
            rows = [compute(a, d, {}) for a, d in zip(achieved_goal, desired_goal, strict=True)]
            return np.asarray(rows, dtype=np.float32).reshape(achieved_goal.shape[:-1])

        return reward


class FetchFamily(GoalEnvFamily):
    """gymnasium-robotics Fetch tasks (v4, MuJoCo), sparse and dense."""

    TASKS = tuple(
        f"Fetch{name}{dense}-v4"
        for name in ("Reach", "Push", "PickAndPlace", "Slide")
        for dense in ("", "Dense")
    )
    GRASPABLE = ("FetchPickAndPlace-v4", "FetchPickAndPlaceDense-v4")
    """Tasks whose episodes can start with the object grasped (``collect.grasped_start_share``)."""

    def register(self) -> None:
        _register_robotics()

    def make_stepper(self, task: str, num_envs: int) -> EpisodeStepper:
        """Envs stepped by direct MuJoCo calls, bit for bit the env's own results
        (:mod:`common.fetch_stepper`: 0.7x the CPU of gymnasium's step)."""
        self.register()  # drops gymnasium-robotics' import notice before the import below
        from common.fetch_stepper import FetchStepper

        return FetchStepper([self.make(task) for _ in range(num_envs)])


class PandaFamily(GoalEnvFamily):
    """panda-gym 3 Franka Panda tasks (v3, PyBullet), sparse and dense. Reach, Push and Slide
    act with 3 numbers (the gripper stays closed), PickAndPlace, Stack and Flip with 4.
    Episodes run to their time limit (:class:`RunsFullEpisodes`)."""

    TASKS = tuple(
        f"Panda{name}{dense}-v3"
        for name in ("Reach", "Push", "Slide", "PickAndPlace", "Stack", "Flip")
        for dense in ("", "Dense")
    )

    WRAPPERS = (RunsFullEpisodes,)

    def register(self) -> None:
        _register_panda()

    def _constructing(self) -> contextlib.AbstractContextManager:
        return _native_stdout_silenced()

    def _frame_size(self, size: int) -> dict[str, int]:
        return {"render_width": size, "render_height": size}


MT10 = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
    "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
    "window-close-v3",
)
"""Meta-World's MT10 benchmark, in its own order (``metaworld.MT10``)."""

VARIATIONS_SEED = 0
"""Seed of each Meta-World task's 50 train variations (``metaworld.MT1(name, seed)``), fixed
so that every process of a run, and every run, trains on the same ones."""


class DenseRewardAsGoalEnv(gym.Wrapper):
    """A Meta-World env on the goal-env data path: ``achieved_goal`` carries the reward of
    the step that led to it, scaled into HER's [-1, 0] range (``r / 10 - 1``; Meta-World
    rewards lie in [0, 10], and an affine change of a fixed-horizon reward keeps the optimal
    policy), ``desired_goal`` is a constant 0, and ``compute_reward`` reads the reward back.
    Each reset draws one of the task's train variations with the reset's seed.
    ``info["is_success"]`` stays 1 once the task was solved: Meta-World's evaluation counts
    an episode solved at its first success, while our episodes run their whole horizon."""

    def __init__(self, env: gym.Env, variations: list[Any]) -> None:
        super().__init__(env)
        self.variations = variations
        self._variation_rng = np.random.default_rng()
        self._solved = False
        space = env.observation_space
        self.observation_space = gym.spaces.Dict({
            "observation": gym.spaces.Box(-np.inf, np.inf, space.shape, np.float64),
            "achieved_goal": gym.spaces.Box(-1.0, 0.0, (1,), np.float64),
            "desired_goal": gym.spaces.Box(0.0, 0.0, (1,), np.float64),
        })

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            self._variation_rng = np.random.default_rng(seed)
        self.env.unwrapped.set_task(
            self.variations[self._variation_rng.integers(len(self.variations))])
        obs, info = self.env.reset(seed=seed, options=options)
        self._solved = False
        return self._goal_obs(obs, -1.0), {**info, "is_success": 0.0}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool,
                                          dict[str, Any]]:
        obs, reward, _, truncated, info = self.env.step(action)
        scaled = float(reward) / 10.0 - 1.0
        self._solved = self._solved or info["success"] > 0.5
        return (self._goal_obs(obs, scaled), scaled, False, truncated,
                {**info, "is_success": float(self._solved)})

    @staticmethod
    def _goal_obs(obs: np.ndarray, reward: float) -> dict[str, np.ndarray]:
        return {"observation": obs, "achieved_goal": np.array([reward]),
                "desired_goal": np.zeros(1)}

    @staticmethod
    def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray,
                       info: Any) -> np.ndarray:
        """The stored reward: Meta-World's is dense and no goal can be swapped in."""
        return np.asarray(achieved_goal)[..., 0]


def _metaworld() -> Any:
    _offscreen_mujoco()
    import metaworld

    return metaworld


@cache
def _metaworld_variations(task: str) -> list[Any]:
    return _metaworld().MT1(task, seed=VARIATIONS_SEED).train_tasks


def _make_metaworld_env(task: str, render_mode: str | None = None, width: int = 480,
                        height: int = 480) -> gym.Env:
    env = _metaworld().ALL_V3_ENVIRONMENTS[task](render_mode=render_mode, width=width,
                                                  height=height)
    return DenseRewardAsGoalEnv(env, _metaworld_variations(task))


@cache
def _register_metaworld(tasks: tuple[str, ...]) -> None:
    for task in tasks:
        gym.register(task, entry_point=partial(_make_metaworld_env, task),
                     max_episode_steps=500, disable_env_checker=True)


class MetaWorldFamily(GoalEnvFamily):
    """Meta-World v3 tasks (MuJoCo): dense reward, success from ``info["success"]``, a new
    train variation every episode (:class:`DenseRewardAsGoalEnv`); never relabeled. Its 50
    names are read from metaworld, imported only when a name like theirs appears."""

    RELABELS_GOALS = False

    @staticmethod
    @cache
    def names() -> tuple[str, ...]:
        return tuple(_metaworld().ALL_V3_ENVIRONMENTS)

    def register(self) -> None:
        _register_metaworld(self.names())

    def reward_fn(self, task: str) -> RewardFn:
        def reward(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
            return DenseRewardAsGoalEnv.compute_reward(achieved_goal, desired_goal, {}).astype(
                np.float32)

        return reward


FAMILIES: dict[str, GoalEnvFamily] = {
    task: family for family in (FetchFamily(), PandaFamily()) for task in family.TASKS
}
"""Families whose task ids are known without importing them."""

METAWORLD = MetaWorldFamily()


def _looks_like_metaworld(task: str) -> bool:
    return task[:1].islower() and task.endswith("-v3")


def family_of(task: str) -> GoalEnvFamily:
    """The adapter that owns ``task``."""
    if task in FAMILIES:
        return FAMILIES[task]
    if _looks_like_metaworld(task) and task in METAWORLD.names():
        return METAWORLD
    raise ValueError(f"unknown env id {task!r}")


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
