"""Training statistics between two ``train`` records: throughput, policy lag, losses."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from agent.td3 import UpdateResult
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
        self.task_counts: dict[str, int] = {}

    def add_episodes(self, task: int, batch: EpisodeBatch, current_version: int) -> None:
        self.steps += batch.env_steps
        self.success[task].append(batch.success)
        self.lag.append(current_version - batch.policy_version)

    def add_update(self, result: UpdateResult, weights: torch.Tensor) -> None:
        """One update's values, and the loss weight it gave each task."""
        self.updates += 1
        self._add(self.sums, self.counts, result.scalars())
        self._add(self.task_sums, self.task_counts, {**result.per_task(), "weights": weights})

    @staticmethod
    def _add(sums: dict[str, torch.Tensor], counts: dict[str, int],
             values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            sums[key] = sums[key] + value if key in sums else value.clone()
            counts[key] = counts.get(key, 0) + 1

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
            mean = (total / self.task_counts[key]).cpu()
            record.update({f"{key}/{t}": float(v) for t, v in zip(tasks, mean, strict=True)})
        for task, values in zip(tasks, self.success, strict=True):
            if values:
                record[f"collect/success_rate/{task}"] = float(np.concatenate(values).mean())
        self._reset(now)
        return record
