"""Multi-task batches: rows split by scheduler shares over tasks with data, encoded per task."""

from __future__ import annotations

import numpy as np
import pytest

from agent.replay.batching import MultiTaskBatcher, split_batch
from agent.replay.episode_replay import EpisodeReplay
from agent.replay.her import HerSampler
from common.envs import TaskShape
from common.messages import EpisodeBatch
from common.normalizer import ObservationEncoder


@pytest.mark.parametrize(
    "shares, available, expected",
    [
        ([1 / 3, 1 / 3, 1 / 3], [True, True, True], [86, 85, 85]),
        ([1 / 3, 1 / 3, 1 / 3], [True, False, True], [128, 0, 128]),
        ([0.5, 0.25, 0.25], [True, True, True], [128, 64, 64]),
        ([0.0, 0.0, 1.0], [True, True, False], [128, 128, 0]),
    ],
)
def test_split_batch_renormalizes_over_available_tasks(
    shares: list[float], available: list[bool], expected: list[int]
) -> None:
    counts = split_batch(256, np.array(shares), np.array(available))
    assert counts.sum() == 256
    assert counts.tolist() == expected


def test_batch_rows_carry_task_index_padding_and_one_hot() -> None:
    shapes = [TaskShape(2, 3, 4, 5), TaskShape(4, 3, 4, 5)]
    encoder = ObservationEncoder(shapes, eps=0.01, clip=5.0)
    replays = [EpisodeReplay(s, 100) for s in shapes]
    for task, shape in enumerate(shapes):
        replays[task].add(EpisodeBatch(
            f"t{task}", np.ones((3, 6, shape.obs_dim), np.float32),
            np.zeros((3, 6, 3), np.float32), np.zeros((3, 5, 3), np.float32),
            np.zeros((3, 5, 4), np.float32), np.zeros(3, bool), 0,
        ))
    samplers = [HerSampler(lambda a, g: np.zeros(len(a), np.float32)) for _ in shapes]
    batch = MultiTaskBatcher(replays, samplers, encoder, np.random.default_rng(0)).sample(
        10, np.array([0.5, 0.5])
    )
    assert batch.obs.shape == (10, 4 + 3 + 2)
    task = batch.task.numpy()
    assert (task == 0).sum() == 5 and (task == 1).sum() == 5
    one_hot = batch.obs[:, -2:].numpy()
    assert np.array_equal(one_hot.argmax(1), task)
    assert np.all(batch.obs[task == 0, 2:4].numpy() == 0.0)  # task 0 padded from 2 to 4
