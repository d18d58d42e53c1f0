"""TrainingWindow: what one train record holds, and that each record starts a new window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.report.training_window import TrainingWindow
from agent.update_types import UpdateResult
from common.messages import EpisodeBatch

TASKS = ["FetchPush-v4", "FetchSlide-v4"]


def batch(success: list[bool], version: int, horizon: int = 50) -> EpisodeBatch:
    n = len(success)
    zeros = np.zeros((n, horizon, 1), np.float32)
    return EpisodeBatch("t", zeros, zeros, zeros, zeros, np.array(success), version)


def result(critic: float, per_task: list[float] | None = None) -> UpdateResult:
    per_task_values = torch.tensor(per_task or [critic, critic])
    zero = torch.tensor(0.0)
    return UpdateResult(torch.tensor(critic), per_task_values, zero, torch.zeros(2), zero,
                        torch.ones(2))


def test_a_record_holds_means_per_task_names_and_throughput_of_its_window() -> None:
    window = TrainingWindow(len(TASKS))
    window.add_episodes(0, batch([True, False, True, True], version=7), current_version=10)
    window.add_episodes(1, batch([False, False], version=10), current_version=10)
    for critic in (1.0, 3.0):
        window.add_update(result(critic, per_task=[critic, 2 * critic]),
                          weights=torch.tensor([0.25, 0.75]))
    record = window.flush(TASKS, now=window.since + 2.0)
    assert record["perf/env_steps_per_s"] == pytest.approx(6 * 50 / 2.0)
    assert record["perf/updates_per_s"] == pytest.approx(1.0)
    assert record["perf/policy_lag_updates"] == pytest.approx(1.5)  # lags 3 and 0
    assert record["losses/critic"] == pytest.approx(2.0)
    assert record["losses/critic/FetchPush-v4"] == pytest.approx(2.0)
    assert record["losses/critic/FetchSlide-v4"] == pytest.approx(4.0)
    assert record["weights/FetchSlide-v4"] == pytest.approx(0.75)
    assert record["collect/success_rate/FetchPush-v4"] == pytest.approx(0.75)
    assert record["collect/success_rate/FetchSlide-v4"] == 0.0


def test_the_next_record_counts_only_what_came_after_the_flush() -> None:
    window = TrainingWindow(len(TASKS))
    window.add_episodes(0, batch([True], version=0), current_version=0)
    window.add_update(result(5.0), weights=torch.tensor([1.0, 0.0]))
    window.flush(TASKS, now=window.since + 1.0)
    window.add_update(result(1.0), weights=torch.tensor([1.0, 0.0]))
    record = window.flush(TASKS, now=window.since + 4.0)
    assert record["losses/critic"] == 1.0 and record["perf/updates_per_s"] == 0.25
    assert record["perf/env_steps_per_s"] == 0.0
    assert not any(key.startswith("collect/") for key in record)  # no episode arrived
    assert "perf/policy_lag_updates" not in record


def test_a_meta_update_counts_every_learner_update_it_made() -> None:
    window = TrainingWindow(len(TASKS))
    window.add_update(result(1.0), weights=torch.tensor([0.5, 0.5]), updates=8)  # k=4, K=2
    window.add_update(result(3.0), weights=torch.tensor([0.5, 0.5]), updates=8)
    record = window.flush(TASKS, now=window.since + 2.0)
    assert record["perf/updates_per_s"] == pytest.approx(8.0)
    assert record["losses/critic"] == pytest.approx(2.0)  # each meta-update's mean, once


def test_a_task_missing_from_a_batch_does_not_dilute_its_means() -> None:
    window = TrainingWindow(len(TASKS))
    both = result(2.0, per_task=[2.0, 6.0])
    only_push = UpdateResult(torch.tensor(4.0), torch.tensor([4.0, 0.0]), torch.tensor(0.0),
                             torch.tensor([1.0, 0.0]), torch.tensor(0.0), torch.tensor([1.0, 0.0]))
    window.add_update(both, weights=torch.tensor([0.5, 0.5]))
    window.add_update(only_push, weights=torch.tensor([1.0, 0.0]))
    record = window.flush(TASKS, now=window.since + 1.0)
    assert record["losses/critic/FetchPush-v4"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert record["losses/critic/FetchSlide-v4"] == pytest.approx(6.0)  # its one update
    assert record["q/mean/FetchSlide-v4"] == pytest.approx(0.0)
    assert record["weights/FetchSlide-v4"] == pytest.approx(0.25)  # weights: every update


def test_a_task_absent_from_every_update_of_a_window_has_no_per_task_values() -> None:
    window = TrainingWindow(len(TASKS))
    only_push = UpdateResult(torch.tensor(4.0), torch.tensor([4.0, 0.0]), torch.tensor(0.0),
                             torch.tensor([1.0, 0.0]), torch.tensor(0.0), torch.tensor([1.0, 0.0]))
    window.add_update(only_push, weights=torch.tensor([1.0, 0.0]))
    record = window.flush(TASKS, now=window.since + 1.0)
    assert "losses/critic/FetchPush-v4" in record
    assert "losses/critic/FetchSlide-v4" not in record
    assert record["weights/FetchSlide-v4"] == 0.0
