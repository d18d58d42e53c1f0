"""Training statistics between two ``train`` records: throughput, policy lag, losses."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

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

    def add_episodes(self, task: int, batch: EpisodeBatch, current_version: int) -> None:
        self.steps += batch.env_steps
        self.success[task].append(batch.success)
        self.lag.append(current_version - batch.policy_version)

    def add_update(self, out: dict[str, torch.Tensor], weights: torch.Tensor) -> None:
        self.updates += 1
        for key, value in {**out, "weights_per_task": weights}.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
            self.counts[key] = self.counts.get(key, 0) + 1

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
            mean = (total / self.counts[key]).cpu()
            if key.endswith("_per_task"):
                base = key.removesuffix("_per_task")
                record.update({f"{base}/{t}": float(v) for t, v in zip(tasks, mean, strict=True)})
            else:
                record[key] = float(mean)
        for task, values in zip(tasks, self.success, strict=True):
            if values:
                record[f"collect/success_rate/{task}"] = float(np.concatenate(values).mean())
        self._reset(now)
        return record
