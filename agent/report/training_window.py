"""Training statistics between two ``train`` records: throughput, policy lag, losses.

Per-task values are averaged over the updates whose batch held rows of that task: a task
that a scheduler gave no share in an update contributes nothing to that update's means
(its loss there is not a measurement, and counting it as 0 would dilute the others)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from agent.update_types import UpdateResult
from common.messages import EpisodeBatch


class TrainingWindow:
    """Aggregates training statistics between two train records."""

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.since, self.steps, self.updates = now, 0, 0
        self.success: list[list[np.ndarray]] = [[] for _ in range(self.num_tasks)]
        self.lag: list[int] = []
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.task_sums: dict[str, torch.Tensor] = {}
        """Per-task vectors by metric name, recorded as ``<name>/<task>``."""
        self.task_counts: dict[str, torch.Tensor] = {}
        """Per-task number of values summed into ``task_sums`` (one per update with rows)."""

    def add_episodes(self, task: int, batch: EpisodeBatch, current_version: int) -> None:
        self.steps += batch.env_steps
        self.success[task].append(batch.success)
        self.lag.append(current_version - batch.policy_version)

    def add_update(self, result: UpdateResult, weights: torch.Tensor, updates: int = 1) -> None:
        """One update's values, and the loss weight it gave each task (every task has a
        weight in every update; its other per-task values count where it had rows).
        ``updates``: the learner updates it made (a meta-update makes several)."""
        self.updates += updates
        for key, value in result.scalars().items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
            self.counts[key] = self.counts.get(key, 0) + 1
        self.add_per_task(result.per_task(), result.tasks_present)
        self.add_per_task({"weights": weights}, torch.ones_like(weights))

    def add_per_task(self, values: dict[str, torch.Tensor], present: torch.Tensor) -> None:
        """Per-task vectors by metric name; only the tasks where ``present`` is 1 count."""
        for key, value in values.items():
            masked, mask = value * present, present.to(value.dtype)
            if key in self.task_sums:
                self.task_sums[key] = self.task_sums[key] + masked
                self.task_counts[key] = self.task_counts[key] + mask
            else:
                self.task_sums[key], self.task_counts[key] = masked.clone(), mask.clone()

    def flush(self, tasks: Sequence[str], now: float) -> dict[str, float]:
        """Means since the last flush, namespaced metric keys; then start a new window."""
        elapsed = max(now - self.since, 1e-9)
        record: dict[str, float] = {
            "perf/env_steps_per_s": self.steps / elapsed,
            "perf/updates_per_s": self.updates / elapsed,
        }
        if self.lag:
            record["perf/policy_lag_updates"] = float(np.mean(self.lag))
        for key, total in self.sums.items():
            record[key] = float((total / self.counts[key]).cpu())
        for key, total in self.task_sums.items():
            counts = self.task_counts[key].cpu()
            mean = (total.cpu() / counts.clamp_min(1))
            record.update({f"{key}/{t}": float(v)
                           for t, v, n in zip(tasks, mean, counts, strict=True) if n > 0})
        for task, values in zip(tasks, self.success, strict=True):
            if values:
                record[f"collect/success_rate/{task}"] = float(np.concatenate(values).mean())
        self._reset(now)
        return record
