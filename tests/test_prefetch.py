"""The batch prefetcher: the next batch with its TD targets, prepared on a second thread."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from agent.learn.prefetch import BatchPrefetcher
from tests.test_td3 import make_batch, make_learner, params


def test_prefetched_targets_give_the_update_the_learner_would_do_itself() -> None:
    learner = make_learner(target_noise=0.0)  # targets are deterministic
    twin = copy.deepcopy(learner)
    batches = iter(make_batch(seed=seed) for seed in range(10))
    sampled: list = []

    def sample(shares: np.ndarray):
        sampled.append(next(batches))
        return sampled[-1]

    prefetcher = BatchPrefetcher(sample, learner)
    weights = torch.tensor([0.5, 0.5])
    for step in range(3):
        batch, target = prefetcher.next(np.ones(2))
        assert batch is sampled[step]
        learner.update(batch, weights, target=target)
        twin.update(batch, weights)  # computes its own targets
        assert torch.allclose(params(learner.critics), params(twin.critics), atol=1e-6)
    prefetcher.close()
    assert len(sampled) == 4  # three used, one prepared ahead while the third trained


def test_a_failed_sample_is_raised_on_the_learner_thread() -> None:
    def sample(shares: np.ndarray):
        raise ValueError("cannot sample from an empty replay buffer")

    prefetcher = BatchPrefetcher(sample, make_learner())
    with pytest.raises(ValueError, match="empty replay"):
        prefetcher.next(np.ones(2))
    prefetcher.close()


def test_targets_are_never_read_while_a_polyak_step_moves_them() -> None:
    learner = make_learner()
    BatchPrefetcher(make_batch, learner)  # installs the lock
    inside = threading.Event()
    release = threading.Event()
    forward = learner.actor_target.forward
    soft_update = learner.soft_update
    events: list[str] = []

    def slow_forward(x: torch.Tensor) -> torch.Tensor:
        inside.set()
        release.wait(5)
        events.append("targets read")
        return forward(x)

    def recorded_soft_update() -> None:
        soft_update()
        events.append("targets moved")

    learner.actor_target.forward = slow_forward  # type: ignore[method-assign]
    reader = threading.Thread(target=learner.td_target, args=(make_batch(),))
    reader.start()
    assert inside.wait(5)
    assert learner.targets_lock.locked()  # the target computation holds the lock
    mover = threading.Thread(target=recorded_soft_update)
    mover.start()
    mover.join(0.3)  # time enough for an unguarded Polyak step to finish
    release.set()
    reader.join(5)
    mover.join(5)
    assert events == ["targets read", "targets moved"]  # the step waited for the reading
