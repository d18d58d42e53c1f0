"""EpisodeIngest: each episode lands in its own task's replay and statistics, once."""

from __future__ import annotations

import numpy as np

from agent.replay.episode_replay import EpisodeReplay
from agent.report.training_window import TrainingWindow
from agent.run.ingest import EpisodeIngest
from agent.run.task_mix import TaskMix
from common.messages import EpisodeBatch
from common.policy import build_encoder, task_shapes
from common.spec import validate_spec

TASKS = ["FetchReach-v4", "FetchPush-v4"]


def batch(task: str, n: int, version: int = 0) -> EpisodeBatch:
    shape = task_shapes([task])[0]
    t = shape.horizon
    rng = np.random.default_rng(n)
    return EpisodeBatch(
        task, rng.normal(size=(n, t + 1, shape.obs_dim)).astype(np.float32),
        np.zeros((n, t + 1, shape.goal_dim), np.float32),
        np.zeros((n, t, shape.goal_dim), np.float32),
        np.zeros((n, t, shape.action_dim), np.float32), np.ones(n, bool), version,
    )


def test_episodes_reach_their_own_tasks_replay_normalizer_mix_and_window() -> None:
    spec = validate_spec({"tasks": TASKS, "budget": {"env_steps": 1000}}, "test")
    shapes = task_shapes(TASKS)
    replays = [EpisodeReplay(shape, 10_000) for shape in shapes]
    encoder, window, mix = build_encoder(spec), TrainingWindow(2), TaskMix(spec)
    notified: list[int] = []
    ingest = EpisodeIngest(TASKS, replays, encoder, lambda: notified.append(1), mix, window,
                           lambda: 7, None)
    ingest.store(batch("FetchPush-v4", 3, version=5), noise_free=False)
    assert (replays[0].episodes, replays[1].episodes) == (0, 3)
    assert (ingest.env_steps, ingest.episodes, notified) == (150, 3, [1])
    assert encoder.obs_norm[0].count == 0 and encoder.obs_norm[1].count == 3 * 51
    assert mix.eval_fields()["FetchPush-v4"]["collect_share"] == 1.0
    record = window.flush(TASKS, now=1e9)
    assert record["perf/policy_lag_updates"] == 2.0  # collected at 5, arrived at update 7
    assert record["collect/success_rate/FetchPush-v4"] == 1.0


def test_goal_statistics_skip_achieved_goals_that_are_rewards() -> None:
    """Meta-World's achieved goals carry the reward, never an input (no HER): only its
    desired goals reach the goal normalizer (goal-based tasks count achieved goals too)."""
    tasks = ["reach-v3"]
    spec = validate_spec({"tasks": tasks, "budget": {"env_steps": 1000}}, "test")
    encoder = build_encoder(spec)
    ingest = EpisodeIngest(tasks, [EpisodeReplay(s, 10_000) for s in task_shapes(tasks)],
                           encoder, lambda: None, TaskMix(spec), TrainingWindow(2), lambda: 0,
                           None)
    ingest.store(batch("reach-v3", 2), noise_free=False)
    assert encoder.goal_norm[0].count == 2 * 500  # desired goals only, not 2 * (500 + 501)
