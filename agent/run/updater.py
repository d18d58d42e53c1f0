"""One learner update, three ways: on this process (with the next batch prepared on a
second thread, or not), across MPI learner ranks, or as a meta-update over tasks.

The principal asks its updater for one update at a time with the task mix's batch
shares and task weights; which way the update is made is decided once, from the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from agent.learn.actor_critic import ActorCriticLearner
from agent.learn.meta_update import MetaUpdater
from agent.learn.prefetch import BatchPrefetcher
from agent.ranks.learner_ranks import RankGroup
from agent.replay.batching import MultiTaskBatcher
from agent.update_types import Batch, UpdateResult
from common.normalizer import ObservationEncoder
from common.spec import Spec

Sample = Callable[[np.ndarray], Batch]
"""A batch of the spec's size, drawn with the given per-task shares, on the learner's device."""


class Updater(Protocol):
    """Makes one learner update from batch shares and task weights."""

    def update(self, shares: np.ndarray, task_weights: np.ndarray) -> UpdateResult:
        """One update and what it reports."""
        ...

    def encoder_updated(self) -> None:
        """New episodes moved the normalizer statistics."""
        ...

    def signal_batch(self, shares: np.ndarray) -> Batch:
        """A batch to measure per-task signals on (:mod:`agent.learn.task_signals`)."""
        ...

    def state_dict(self) -> dict:
        ...

    def load_state_dict(self, state: dict) -> None:
        ...

    def close(self) -> None:
        ...


class LocalUpdater:
    """This process's learner; with ``prefetch`` the next batch and its TD targets are
    prepared on a second thread while this update runs."""

    def __init__(self, learner: ActorCriticLearner, sample: Sample, prefetch: bool) -> None:
        self.learner, self.sample = learner, sample
        self.prefetcher = BatchPrefetcher(sample, learner) if prefetch else None
        self._last_batch: Batch | None = None

    def update(self, shares: np.ndarray, task_weights: np.ndarray) -> UpdateResult:
        batch, target = (self.prefetcher.next(shares) if self.prefetcher is not None
                         else (self.sample(shares), None))
        self._last_batch = batch
        return self.learner.update(batch, torch.as_tensor(task_weights), target=target)

    def encoder_updated(self) -> None:
        pass

    def signal_batch(self, shares: np.ndarray) -> Batch:
        """The batch of the last update (sampling here would race the prefetch thread)."""
        return self._last_batch if self._last_batch is not None else self.sample(shares)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()


class RankUpdater(LocalUpdater):
    """Rank 0 of several MPI learner ranks: every rank samples its own replay shard, the
    gradients are averaged inside the learner's step."""

    def __init__(self, learner: ActorCriticLearner, sample: Sample, group: RankGroup,
                 encoder: ObservationEncoder) -> None:
        super().__init__(learner, sample, prefetch=False)
        self.group, self.encoder = group, encoder
        self._encoder_changed = False

    def update(self, shares: np.ndarray, task_weights: np.ndarray) -> UpdateResult:
        if self._encoder_changed:
            self.group.encoder_changed(self.encoder.state_dict())
            self._encoder_changed = False
        self.group.update(shares, task_weights)
        with self.group.abort_on_error():  # the other ranks wait inside the Allreduce
            return super().update(shares, task_weights)

    def encoder_updated(self) -> None:
        self._encoder_changed = True


class MetaStepUpdater(LocalUpdater):
    """A Reptile/FOMAML step over the tasks that have a batch share and stored data."""

    def __init__(self, learner: ActorCriticLearner, sample: Sample, batcher: MultiTaskBatcher,
                 meta: MetaUpdater) -> None:
        super().__init__(learner, sample, prefetch=False)
        self.batcher, self.meta = batcher, meta

    def update(self, shares: np.ndarray, task_weights: np.ndarray) -> UpdateResult:
        available = self.batcher.available()
        tasks = np.flatnonzero((shares > 0) & available).tolist()
        if not tasks:  # shares only name tasks without data yet: train on what there is
            tasks = np.flatnonzero(available).tolist()
        one_task = np.eye(len(shares))
        return self.meta.step(tasks, lambda task: self.sample(one_task[task]),
                              torch.as_tensor(task_weights))

    def signal_batch(self, shares: np.ndarray) -> Batch:
        """A fresh joint batch: a meta-update trains on one task's batch at a time."""
        return self.sample(shares)

    def state_dict(self) -> dict:
        return self.meta.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.meta.load_state_dict(state)


def build_updater(spec: Spec, learner: ActorCriticLearner, batcher: MultiTaskBatcher,
                  encoder: ObservationEncoder, group: RankGroup | None) -> Updater:
    """The spec's way of updating: meta-update, MPI learner ranks, or local (prefetching
    unless ``learner.prefetch`` is off)."""

    def sample(shares: np.ndarray) -> Batch:
        return batcher.sample(spec.learner.batch_size, shares).to(learner.device)

    if spec.meta.update != "none":
        return MetaStepUpdater(learner, sample, batcher, MetaUpdater(learner, spec.meta))
    if group is not None:
        return RankUpdater(learner, sample, group, encoder)
    return LocalUpdater(learner, sample, spec.learner.prefetch)
