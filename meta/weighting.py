"""Task weightings: per-task weights of the losses in the joint multi-task update."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TaskWeighting(Protocol):
    """Strategy interface: weights in, and per-task losses back as feedback."""

    def weights(self) -> np.ndarray:
        """Weight of each task's loss in the next update."""
        ...

    def record_losses(self, losses: np.ndarray) -> None:
        """Feedback: per-task losses of the last update."""
        ...


class MeanWeighting:
    """Equal weights: the joint loss is the mean of the per-task losses."""

    def __init__(self, num_tasks: int) -> None:
        self._weights = np.full(num_tasks, 1.0 / num_tasks, np.float32)

    def weights(self) -> np.ndarray:
        return self._weights

    def record_losses(self, losses: np.ndarray) -> None:
        """Mean weighting ignores feedback."""


WEIGHTINGS = {"mean": MeanWeighting}


def build_weighting(name: str, num_tasks: int) -> TaskWeighting:
    """The weighting named ``name`` in the spec."""
    return WEIGHTINGS[name](num_tasks)
