"""Replay persistence: chunks per checkpoint, restored on resume, trimmed with the ring."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agent.checkpoint import load_checkpoint, save_checkpoint
from agent.replay.episode_replay import EpisodeReplay
from agent.replay.replay_store import ReplayChunks
from agent.run.principal import Principal
from common.envs import TaskShape
from common.messages import EpisodeBatch
from common.spec import validate_spec

SHAPE = TaskShape(obs_dim=2, goal_dim=3, action_dim=1, horizon=4)


def episodes(first: int, n: int, shape: TaskShape = SHAPE, task: str = "t") -> EpisodeBatch:
    """Episodes whose obs are filled with their global index."""
    t = shape.horizon
    obs = np.repeat(np.arange(first, first + n, dtype=np.float32), (t + 1) * shape.obs_dim)
    return EpisodeBatch(
        task, obs.reshape(n, t + 1, shape.obs_dim),
        np.zeros((n, t + 1, shape.goal_dim), np.float32),
        np.zeros((n, t, shape.goal_dim), np.float32),
        np.zeros((n, t, shape.action_dim), np.float32), np.zeros(n, bool), 0,
    )


def kept_indices(replay: EpisodeReplay) -> list[int]:
    return sorted(int(v) for v in replay.obs[: replay.episodes, 0, 0])


def test_chunks_round_trip_keeps_the_newest_capacity_episodes(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=5 * SHAPE.horizon)
    chunks = ReplayChunks(tmp_path, "t")
    for first, n in ((0, 3), (3, 2), (5, 4)):
        replay.add(episodes(first, n))
        chunks.flush(replay)
    restored = EpisodeReplay(SHAPE, capacity_transitions=5 * SHAPE.horizon)
    ReplayChunks(tmp_path, "t").restore(restored, upto=9)
    assert restored.added == 9 and restored.episodes == 5
    assert kept_indices(restored) == [4, 5, 6, 7, 8]
    restored.add(episodes(9, 1))  # the ring continues where it left off
    assert kept_indices(restored) == [5, 6, 7, 8, 9]


def test_chunks_from_before_the_action_field_rename_restore(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=5 * SHAPE.horizon)
    replay.add(episodes(0, 2))
    ReplayChunks(tmp_path, "t").flush(replay)
    chunk = next((tmp_path / "t").iterdir())
    arrays = load_checkpoint(chunk)
    arrays["actions"] = arrays.pop("action")
    save_checkpoint(chunk, arrays)
    restored = EpisodeReplay(SHAPE, capacity_transitions=5 * SHAPE.horizon)
    assert ReplayChunks(tmp_path, "t").restore(restored, upto=2) == ([], 0)
    assert kept_indices(restored) == [0, 1]


def test_chunks_the_ring_forgot_are_deleted(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=3 * SHAPE.horizon)
    chunks = ReplayChunks(tmp_path, "t")
    for first in range(0, 8, 2):
        replay.add(episodes(first, 2))
        chunks.flush(replay)
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    # episodes 0-1 were forgotten by the previous flush; 2-3 stay for the previous checkpoint
    assert names == ["000000000002-2.pt", "000000000004-2.pt", "000000000006-2.pt"]


def test_restore_into_a_larger_ring_samples_only_restored_episodes(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=10 * SHAPE.horizon)
    chunks = ReplayChunks(tmp_path, "t")
    for first in range(0, 25, 5):
        replay.add(episodes(first, 5))
        chunks.flush(replay)
    bigger = EpisodeReplay(SHAPE, capacity_transitions=40 * SHAPE.horizon)
    ReplayChunks(tmp_path, "t").restore(bigger, upto=25)
    kept = bigger.obs[bigger.slots(np.arange(bigger.episodes)), 0, 0]
    assert kept.tolist() == list(range(10, 25))  # every chunk still on disk, no blank slot


def test_chunks_written_after_the_last_checkpoint_are_ignored(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=10 * SHAPE.horizon)
    chunks = ReplayChunks(tmp_path, "t")
    replay.add(episodes(0, 3))
    chunks.flush(replay)
    replay.add(episodes(3, 2))
    chunks.flush(replay)  # the checkpoint that would count these never got written
    restored = EpisodeReplay(SHAPE, capacity_transitions=10 * SHAPE.horizon)
    ReplayChunks(tmp_path, "t").restore(restored, upto=3)
    assert kept_indices(restored) == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["000000000000-3.pt"]


def test_an_unreadable_chunk_is_skipped_with_everything_older(tmp_path: Path) -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=8 * SHAPE.horizon)
    chunks = ReplayChunks(tmp_path, "t")
    for first in range(0, 9, 3):
        replay.add(episodes(first, 3))
        chunks.flush(replay)
    middle = tmp_path / "t" / "000000000003-3.pt"
    middle.write_bytes(middle.read_bytes()[:100])  # truncated, as by a full disk
    restored = EpisodeReplay(SHAPE, capacity_transitions=8 * SHAPE.horizon)
    unreadable, lost = ReplayChunks(tmp_path, "t").restore(restored, upto=9)
    assert unreadable == [middle.with_suffix(".pt.unreadable")]  # kept aside, not read again
    assert unreadable[0].exists() and not middle.exists()
    kept = restored.obs[restored.slots(np.arange(restored.episodes)), 0, 0]
    assert kept.tolist() == [6, 7, 8]  # one contiguous newest run, no blank slot sampled
    assert lost == 8 - 3  # the ring would have held 8 (episodes 1..8)
    restored.add(episodes(9, 1))
    assert restored.obs[restored.slots(np.arange(restored.episodes)), 0, 0].tolist() == [
        6, 7, 8, 9]


class NoTransport:
    def submit(self, observer: str, order: object) -> None:
        raise AssertionError("no collection in this test")


class NoMetrics:
    dropped = 0


def test_resume_restores_replay_and_skips_the_warm_up(tmp_path: Path) -> None:
    spec = validate_spec({
        "tasks": ["FetchReach-v4"], "budget": {"env_steps": 10_000},
        "learner": {"start_after_env_steps": 300, "hidden_sizes": [8]},
    }, "test")
    first = Principal(spec, tmp_path, NoTransport(), [], NoMetrics())
    shape = first.shapes[0]
    batch = episodes(0, 8, shape, "FetchReach-v4")
    batch.obs = np.random.default_rng(0).normal(size=batch.obs.shape).astype(np.float32)
    first.ingest.store(batch, noise_free=False)
    path = first.checkpoint()
    second = Principal(spec, tmp_path, NoTransport(), [], NoMetrics())
    second.load_state_dict(load_checkpoint(path))
    assert second.env_steps == 400 and second.replays[0].episodes == 8
    assert np.array_equal(second.replays[0].obs[:8], first.replays[0].obs[:8])
    assert second.warmup_until == 400  # 400 restored transitions cover the 300 warm-up
    assert np.array_equal(second.encoder.obs_norm[0].mean, first.encoder.obs_norm[0].mean)
