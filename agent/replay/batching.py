"""Draws one multi-task training batch from the per-task replays and encodes it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agent.replay.episode_replay import EpisodeReplay
from agent.replay.her import HerSampler
from agent.update_types import Batch
from common.normalizer import ObservationEncoder


def split_batch(batch_size: int, shares: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Rows per task: ``shares`` renormalized over tasks with data, rounded to sum exactly."""
    weights = np.where(available, shares, 0.0)
    if weights.sum() <= 0:
        weights = available.astype(float)
    exact = batch_size * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    leftover = batch_size - counts.sum()
    counts[np.argsort(counts - exact)[:leftover]] += 1
    return counts


class MultiTaskBatcher:
    """HER-samples each task's rows, encodes them with that task's normalizers, stacks them."""

    def __init__(
        self,
        replays: Sequence[EpisodeReplay],
        samplers: Sequence[HerSampler],
        encoder: ObservationEncoder,
        rng: np.random.Generator,
    ) -> None:
        self.replays, self.samplers, self.encoder, self.rng = replays, samplers, encoder, rng

    def available(self) -> np.ndarray:
        """Which tasks have at least one stored episode."""
        return np.array([r.episodes > 0 for r in self.replays])

    def sample(self, batch_size: int, shares: np.ndarray) -> Batch:
        """A batch of ``batch_size`` rows split across tasks by ``shares``."""
        counts = split_batch(batch_size, shares, self.available())
        parts = []
        for task, count in enumerate(counts):
            if count == 0:
                continue
            tr = self.samplers[task].sample(self.replays[task], int(count), self.rng)
            parts.append((
                self.encoder.encode(task, tr.obs, tr.goal),
                self.encoder.pad_action(task, tr.action),
                tr.reward,
                self.encoder.encode(task, tr.next_obs, tr.goal),
                np.full(count, task, np.int64),
            ))
        columns = [torch.from_numpy(np.concatenate(col)) for col in zip(*parts, strict=True)]
        return Batch(*columns)
