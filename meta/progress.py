"""Noise-free success per task in two sliding windows, and learning progress from them.

Learning progress (LP) is the absolute change in success between the older and the newer
window of a task (CURIOUS, Colas et al. 2019; Teacher-Student Curriculum Learning, Matiisen
et al. 2017): it is high while a task is being learned *and* while it is being forgotten.
Two windows of a task that succeeds at random differ by chance, so the change is reduced by
``z`` standard errors of the difference of two window means (the noise floor): a coin-flip
task shows no progress, a solved or hopeless task none either.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class SuccessWindows:
    """The last ``2 * window`` noise-free episode successes of each task."""

    def __init__(self, num_tasks: int, window: int) -> None:
        self.window = window
        self.history = [deque(maxlen=2 * window) for _ in range(num_tasks)]

    def add(self, task: int, successes: np.ndarray) -> None:
        self.history[task].extend(bool(s) for s in np.asarray(successes).reshape(-1))

    def recent(self, task: int) -> float | None:
        """Success over the newest full window, or None before one is full."""
        values = self.history[task]
        if len(values) < self.window:
            return None
        return float(np.mean(list(values)[-self.window:]))

    def progress(self, z: float) -> np.ndarray:
        """Noise-corrected |success change| per task; NaN while a task has < 2 windows."""
        out = np.full(len(self.history), np.nan)
        for task, values in enumerate(self.history):
            if len(values) < 2 * self.window:
                continue
            older, newer = np.split(np.fromiter(values, float), 2)
            pooled = (older.mean() + newer.mean()) / 2
            noise = z * np.sqrt(pooled * (1 - pooled) * 2 / self.window)
            out[task] = max(0.0, abs(newer.mean() - older.mean()) - noise)
        return out

    def state_dict(self) -> dict:
        return {"history": [list(values) for values in self.history]}

    def load_state_dict(self, state: dict) -> None:
        for values, saved in zip(self.history, state["history"], strict=True):
            values.clear()
            values.extend(bool(s) for s in saved)


def progress_distribution(progress: np.ndarray, epsilon: float) -> np.ndarray:
    """ε-uniform mixture with shares proportional to progress.

    A task not measured yet (NaN) counts as the most promising one, so that every task gets
    measured early; with no progress anywhere the distribution is uniform.
    """
    k = len(progress)
    known = progress[~np.isnan(progress)]
    optimistic = max(float(known.max()) if known.size else 0.0, 1e-3)
    scores = np.where(np.isnan(progress), optimistic, progress)
    if scores.sum() <= 0:
        return np.full(k, 1.0 / k)
    return epsilon / k + (1 - epsilon) * scores / scores.sum()
