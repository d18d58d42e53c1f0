"""Task schedulers: which tasks observers collect next, and each task's share of a batch.

Every scheduler turns one distribution over tasks (:meth:`shares`) into both: an order of
``episodes_per_task * K`` episodes drawn from it, and the batch shares. Feedback is the
last-step success of noise-free episodes (``record_success``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from common.spec import Scheduler as SchedulerConfig
from meta.progress import SuccessWindows, progress_distribution


class TaskScheduler:
    """Base: uniform over tasks, draws orders from :meth:`shares`, keeps success windows."""

    def __init__(self, tasks: Sequence[str], config: SchedulerConfig, seed: int) -> None:
        self.tasks, self.config = list(tasks), config
        self.windows = SuccessWindows(len(self.tasks), config.window)
        self.rng = np.random.default_rng(seed)

    def shares(self) -> np.ndarray:
        """Each task's share of collected episodes and of training batches (sums to 1)."""
        return np.full(len(self.tasks), 1.0 / len(self.tasks))

    def next_order(self, episodes_per_task: int) -> list[tuple[str, int]]:
        """The task list of the next order: ``episodes_per_task * K`` episodes by share."""
        counts = self.rng.multinomial(episodes_per_task * len(self.tasks), self.shares())
        return [(task, int(n)) for task, n in zip(self.tasks, counts, strict=True) if n > 0]

    def batch_shares(self) -> np.ndarray:
        return self.shares()

    def record_success(self, task: int, successes: np.ndarray) -> None:
        """Feedback: last-step success of noise-free episodes of task index ``task``."""
        self.windows.add(task, successes)

    def state_dict(self) -> dict:
        return {"windows": self.windows.state_dict(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state["windows"])
        self.rng.bit_generator.state = state["rng"]


class UniformScheduler(TaskScheduler):
    """Every order carries every task equally; batches split evenly."""

    def next_order(self, episodes_per_task: int) -> list[tuple[str, int]]:
        return [(task, episodes_per_task) for task in self.tasks]


class RoundRobinScheduler(TaskScheduler):
    """Each order carries one task, in turn; batches split evenly."""

    def __init__(self, tasks: Sequence[str], config: SchedulerConfig, seed: int) -> None:
        super().__init__(tasks, config, seed)
        self.turn = 0

    def next_order(self, episodes_per_task: int) -> list[tuple[str, int]]:
        task = self.tasks[self.turn % len(self.tasks)]
        self.turn += 1
        return [(task, episodes_per_task * len(self.tasks))]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "turn": self.turn}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.turn = int(state["turn"])


class LearningProgressScheduler(TaskScheduler):
    """Shares ∝ noise-corrected learning progress, mixed with ε uniform."""

    def shares(self) -> np.ndarray:
        progress = self.windows.progress(self.config.noise_floor_z)
        return progress_distribution(progress, self.config.epsilon)


class LearnabilityScheduler(TaskScheduler):
    """Shares ∝ learnability p(1 − p) of each task's recent noise-free success p, mixed with
    ε uniform ("No Regrets", Rutherford et al. 2024): highest for a task solved half the
    time, zero for a solved or a hopeless one. A task without a full window yet counts as
    the most learnable."""

    def shares(self) -> np.ndarray:
        recent = [self.windows.recent(task) for task in range(len(self.tasks))]
        learnability = np.array([np.nan if p is None else p * (1 - p) for p in recent])
        return progress_distribution(learnability, self.config.epsilon)


class StagedScheduler(TaskScheduler):
    """Tasks enter in ``config.order``; the current one moves on at ``config.threshold``."""

    def __init__(self, tasks: Sequence[str], config: SchedulerConfig, seed: int) -> None:
        super().__init__(tasks, config, seed)
        self.order = [self.tasks.index(t) for t in (config.order or self.tasks)]
        self.stage = 0
        """Position in ``order`` of the task being learned (len(order) when all passed)."""

    def record_success(self, task: int, successes: np.ndarray) -> None:
        super().record_success(task, successes)
        while self.stage < len(self.order):
            recent = self.windows.recent(self.order[self.stage])
            if recent is None or recent < self.config.threshold:
                break
            self.stage += 1

    def state_dict(self) -> dict:
        return {**super().state_dict(), "stage": self.stage}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.stage = int(state["stage"])


class CurriculumScheduler(StagedScheduler):
    """The current task plus every passed task at ``floor_share`` each; all tasks uniform once
    every one has passed."""

    def shares(self) -> np.ndarray:
        k = len(self.tasks)
        if self.stage >= k:
            return np.full(k, 1.0 / k)
        shares = np.zeros(k)
        shares[self.order[: self.stage]] = self.config.floor_share
        shares[self.order[self.stage]] = max(1.0 - shares.sum(), self.config.floor_share)
        return shares / shares.sum()


class SequentialScheduler(StagedScheduler):
    """One task at a time (fine-tuning the same network); stays on the last one."""

    def shares(self) -> np.ndarray:
        shares = np.zeros(len(self.tasks))
        shares[self.order[min(self.stage, len(self.order) - 1)]] = 1.0
        return shares


SCHEDULERS: dict[str, type[TaskScheduler]] = {
    "uniform": UniformScheduler,
    "round_robin": RoundRobinScheduler,
    "learning_progress": LearningProgressScheduler,
    "learnability": LearnabilityScheduler,
    "curriculum": CurriculumScheduler,
    "sequential": SequentialScheduler,
}


def build_scheduler(config: SchedulerConfig, tasks: Sequence[str], seed: int) -> TaskScheduler:
    """The scheduler named ``config.name`` in the spec."""
    return SCHEDULERS[config.name](tasks, config, seed)
