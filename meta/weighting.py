"""Task weightings: per-task weights of the losses in the joint multi-task update.

Weights are decided before an update (so rank 0 can send them to every learner rank) from
feedback of earlier updates: per-task critic losses and noise-free success. ``pcgrad``
weights evenly; the learner, built from the same spec, projects conflicting gradients.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from common.spec import Scheduler as SchedulerConfig
from common.spec import Weighting as WeightingConfig
from meta.famo import FamoWeighting
from meta.progress import SuccessWindows, progress_distribution


class TaskWeighting(Protocol):
    """Strategy interface: weights out, losses and successes back as feedback."""

    def weights(self) -> np.ndarray:
        """Weight of each task's loss in the next update (sums to 1)."""
        ...

    def record_losses(self, losses: np.ndarray) -> None:
        """Per-task critic losses of the last update (NaN for tasks not in its batch)."""
        ...

    def record_success(self, task: int, successes: np.ndarray) -> None:
        """Last-step success of noise-free episodes of ``task``."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class MeanWeighting:
    """Equal weights: the joint loss is the mean of the per-task losses."""

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks

    def weights(self) -> np.ndarray:
        return np.full(self.num_tasks, 1.0 / self.num_tasks, np.float32)

    def record_losses(self, losses: np.ndarray) -> None:
        """Ignored."""

    def record_success(self, task: int, successes: np.ndarray) -> None:
        """Ignored."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Stateless."""


class LossWeighting(MeanWeighting):
    """Weights proportional to each task's recent critic loss (a running mean).

    What users try first; it up-weights whichever task has the largest TD error, which in
    sparse-reward HER tracks the scale of its values and its noise, not whether it learns.
    """

    def __init__(self, num_tasks: int, smoothing: float = 0.01) -> None:
        super().__init__(num_tasks)
        self.smoothing = smoothing
        self.mean_loss = np.full(num_tasks, np.nan)

    def weights(self) -> np.ndarray:
        known = self.mean_loss[~np.isnan(self.mean_loss)]
        if known.size == 0 or known.sum() <= 0:
            return super().weights()
        losses = np.where(np.isnan(self.mean_loss), known.mean(), self.mean_loss)
        return (losses / losses.sum()).astype(np.float32)

    def record_losses(self, losses: np.ndarray) -> None:
        seen = ~np.isnan(losses)
        fresh = seen & np.isnan(self.mean_loss)
        self.mean_loss[fresh] = losses[fresh]
        old = seen & ~fresh
        self.mean_loss[old] += self.smoothing * (losses[old] - self.mean_loss[old])

    def state_dict(self) -> dict:
        return {"mean_loss": self.mean_loss.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.mean_loss = np.asarray(state["mean_loss"], float)


class LearningProgressWeighting(MeanWeighting):
    """Weights from the same noise-corrected learning progress the scheduler uses."""

    def __init__(self, num_tasks: int, scheduler: SchedulerConfig) -> None:
        super().__init__(num_tasks)
        self.config = scheduler
        self.windows = SuccessWindows(num_tasks, scheduler.window)

    def weights(self) -> np.ndarray:
        progress = self.windows.progress(self.config.noise_floor_z)
        return progress_distribution(progress, self.config.epsilon).astype(np.float32)

    def record_success(self, task: int, successes: np.ndarray) -> None:
        self.windows.add(task, successes)

    def state_dict(self) -> dict:
        return {"windows": self.windows.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.windows.load_state_dict(state["windows"])


class FamoTaskWeighting(FamoWeighting):
    """FAMO on the critic loss (:mod:`meta.famo`); the actor uses the same weights."""

    def record_success(self, task: int, successes: np.ndarray) -> None:
        """Ignored."""


def build_weighting(
    config: WeightingConfig, num_tasks: int, scheduler: SchedulerConfig
) -> TaskWeighting:
    """The weighting named ``config.name`` in the spec."""
    if config.name == "famo":
        return FamoTaskWeighting(num_tasks, config.famo_lr, config.famo_decay)
    if config.name == "learning_progress":
        return LearningProgressWeighting(num_tasks, scheduler)
    # pcgrad weights evenly; the learner projects (projects_gradients)
    return {"mean": MeanWeighting, "loss": LossWeighting, "pcgrad": MeanWeighting}[
        config.name
    ](num_tasks)


def projects_gradients(name: str) -> bool:
    """Whether weighting ``name`` has the learner project conflicting per-task gradients
    (PCGrad) before combining them: the one place that decides it."""
    return name == "pcgrad"
