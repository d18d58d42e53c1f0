"""Task schedulers: which tasks observers collect next, and each task's share of a batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class TaskScheduler(Protocol):
    """Strategy interface; the principal agent calls it, never the other way round."""

    def next_order(self, episodes_per_task: int) -> list[tuple[str, int]]:
        """The task list of the next order sent to an observer."""
        ...

    def batch_shares(self) -> np.ndarray:
        """Share of each task in the next training batch (sums to 1)."""
        ...

    def record_success(self, task: str, successes: np.ndarray) -> None:
        """Feedback: last-step success of episodes of ``task`` that just arrived."""
        ...


class UniformScheduler:
    """Every order carries every task; batches split evenly across tasks."""

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = list(tasks)

    def next_order(self, episodes_per_task: int) -> list[tuple[str, int]]:
        return [(task, episodes_per_task) for task in self.tasks]

    def batch_shares(self) -> np.ndarray:
        return np.full(len(self.tasks), 1.0 / len(self.tasks))

    def record_success(self, task: str, successes: np.ndarray) -> None:
        """Uniform scheduling ignores feedback."""


SCHEDULERS = {"uniform": UniformScheduler}


def build_scheduler(name: str, tasks: Sequence[str]) -> TaskScheduler:
    """The scheduler named ``name`` in the spec."""
    return SCHEDULERS[name](tasks)
