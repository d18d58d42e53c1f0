"""Running normalizers and the multi-task observation encoder."""

from __future__ import annotations

import numpy as np
import pytest

from common.envs import TaskShape
from common.normalizer import ObservationEncoder, RunningNormalizer


def test_running_stats_match_numpy_over_many_batches() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (1000, 4)) * np.array([1, 10, 0.1, 1])
    norm = RunningNormalizer(4, eps=1e-6, clip=100)
    for chunk in np.array_split(data, 7):
        norm.update(chunk)
    assert norm.mean == pytest.approx(data.mean(0), rel=1e-5)
    assert norm.std == pytest.approx(data.std(0), rel=1e-4)
    normalized = norm.normalize(data)
    assert normalized.mean(0) == pytest.approx(np.zeros(4), abs=1e-4)
    assert normalized.std(0) == pytest.approx(np.ones(4), rel=1e-3)


def test_std_floor_and_clip() -> None:
    norm = RunningNormalizer(2, eps=0.5, clip=2.0)
    norm.update(np.zeros((10, 2)))
    assert norm.std.tolist() == [0.5, 0.5]
    assert norm.normalize(np.array([[0.25, 10.0]])).tolist() == [[0.5, 2.0]]


def test_state_round_trip() -> None:
    norm = RunningNormalizer(3)
    norm.update(np.random.default_rng(1).normal(size=(50, 3)))
    other = RunningNormalizer(3)
    other.load_state_dict(norm.state_dict())
    assert np.array_equal(other.mean, norm.mean) and np.array_equal(other.std, norm.std)


def test_encoder_pads_smaller_tasks_and_appends_one_hot() -> None:
    shapes = [TaskShape(10, 3, 4, 50), TaskShape(25, 3, 4, 50)]
    encoder = ObservationEncoder(shapes, eps=0.01, clip=5.0)
    assert encoder.input_dim == 25 + 3 + 2
    rng = np.random.default_rng(2)
    encoder.update(0, rng.normal(size=(20, 10)), rng.normal(size=(20, 3)))
    x = encoder.encode(0, np.ones((4, 10)), np.ones((4, 3)))
    assert x.shape == (4, 30)
    assert np.all(x[:, 10:25] == 0.0)
    assert np.all(x[:, 28] == 1.0) and np.all(x[:, 29] == 0.0)
    y = encoder.encode(1, np.ones((4, 25)), np.ones((4, 3)))
    assert np.all(y[:, 29] == 1.0) and np.all(y[:, 28] == 0.0)


def test_each_task_has_its_own_statistics() -> None:
    shapes = [TaskShape(2, 3, 4, 50), TaskShape(2, 3, 4, 50)]
    encoder = ObservationEncoder(shapes, eps=0.01, clip=5.0)
    encoder.update(0, np.full((5, 2), 100.0), np.zeros((5, 3)))
    encoder.update(1, np.full((5, 2), -100.0), np.zeros((5, 3)))
    assert encoder.encode(0, np.full((1, 2), 100.0), np.zeros((1, 3)))[0, :2].tolist() == [0, 0]
    assert encoder.encode(1, np.full((1, 2), -100.0), np.zeros((1, 3)))[0, :2].tolist() == [0, 0]


def test_goals_and_actions_of_smaller_tasks_are_zero_padded() -> None:
    encoder = ObservationEncoder([TaskShape(6, 3, 3, 50), TaskShape(31, 6, 4, 100)], 0.01, 5.0)
    assert (encoder.obs_dim, encoder.goal_dim, encoder.action_dim) == (31, 6, 4)
    assert encoder.action_dims == [3, 4] and encoder.input_dim == 31 + 6 + 2
    x = encoder.encode(0, np.ones((2, 6)), np.full((2, 3), 7.0))
    assert np.all(x[:, 31:34] != 0.0) and np.all(x[:, 34:37] == 0.0)
    action = np.ones((5, 50, 3), np.float32)
    padded = encoder.pad_action(0, action)
    assert padded.shape == (5, 50, 4) and padded.dtype == np.float32
    assert np.all(padded[..., :3] == 1.0) and np.all(padded[..., 3] == 0.0)
    assert encoder.pad_action(1, np.ones((2, 4), np.float32)).shape == (2, 4)
