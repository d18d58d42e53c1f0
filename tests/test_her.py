"""HER relabeling: share of relabeled goals, where future goals come from, recomputed rewards."""

from __future__ import annotations

import numpy as np
import pytest

from agent.replay.episode_replay import EpisodeReplay
from agent.replay.her import HerSampler
from common.envs import TaskShape, family_of
from common.messages import EpisodeBatch

HORIZON = 10
SHAPE = TaskShape(obs_dim=2, goal_dim=3, action_dim=1, horizon=HORIZON)


def tagged_replay(episodes: int = 6) -> EpisodeReplay:
    """Achieved goal at step t of episode e is (e, t, 0); desired goals are (e, -1, 0)."""
    replay = EpisodeReplay(SHAPE, capacity_transitions=episodes * HORIZON)
    e = np.arange(episodes)[:, None]
    t = np.arange(HORIZON + 1)[None, :]
    achieved = np.stack(np.broadcast_arrays(e, t, 0 * t), -1).astype(np.float32)
    desired = np.stack(np.broadcast_arrays(e, -1 + 0 * t[:, :HORIZON], 0 * t[:, :HORIZON]), -1)
    obs = np.repeat(t[..., None], 2, -1).astype(np.float32) + 0 * e[..., None]
    replay.add(EpisodeBatch(
        "tagged", obs, achieved, desired.astype(np.float32),
        np.zeros((episodes, HORIZON, 1), np.float32), np.zeros(episodes, np.float32), 0,
    ))
    return replay


def exact_match_reward(achieved: np.ndarray, goal: np.ndarray) -> np.ndarray:
    return -(np.abs(achieved - goal).sum(-1) > 1e-6).astype(np.float32)


@pytest.mark.parametrize("k, share", [(4, 0.8), (1, 0.5), (0, 0.0)])
def test_relabeled_share_is_k_over_k_plus_one(k: float, share: float) -> None:
    sampler = HerSampler(exact_match_reward, "future", k)
    batch = sampler.sample(tagged_replay(), 20_000, np.random.default_rng(0))
    assert batch.relabeled.mean() == pytest.approx(share, abs=0.015)
    original = batch.goal[:, 1] == -1
    assert np.array_equal(original, ~batch.relabeled)


def test_future_goals_come_from_later_steps() -> None:
    batch = HerSampler(exact_match_reward, "future", 4).sample(
        tagged_replay(), 5_000, np.random.default_rng(1)
    )
    t = batch.obs[batch.relabeled, 0]
    goal_step = batch.goal[batch.relabeled, 1]
    assert np.all(goal_step >= t + 1) and np.all(goal_step <= HORIZON)
    assert set(np.unique(goal_step - t)) == set(range(1, HORIZON + 1))


def test_future_goal_episode_matches_transition_episode() -> None:
    replay = tagged_replay()
    # make obs carry the episode index too, so the source episode is visible in the batch
    replay.obs[..., 1] = np.arange(replay.episodes)[:, None]
    batch = HerSampler(exact_match_reward, "future", 4).sample(
        replay, 5_000, np.random.default_rng(2)
    )
    rows = batch.relabeled
    assert np.array_equal(batch.goal[rows, 0], batch.obs[rows, 1])


def test_final_strategy_uses_last_achieved_goal() -> None:
    batch = HerSampler(exact_match_reward, "final", 4).sample(
        tagged_replay(), 2_000, np.random.default_rng(3)
    )
    assert np.all(batch.goal[batch.relabeled, 1] == HORIZON)


def test_episode_strategy_draws_from_whole_episode() -> None:
    batch = HerSampler(exact_match_reward, "episode", 4).sample(
        tagged_replay(), 5_000, np.random.default_rng(4)
    )
    assert set(np.unique(batch.goal[batch.relabeled, 1])) == set(range(HORIZON + 1))


def test_rewards_are_recomputed_for_relabeled_goals() -> None:
    batch = HerSampler(exact_match_reward, "future", 4).sample(
        tagged_replay(), 5_000, np.random.default_rng(5)
    )
    t = batch.obs[:, 0]
    hit = batch.relabeled & (batch.goal[:, 1] == t + 1)
    assert hit.any()
    assert np.all(batch.reward[hit] == 0.0)
    assert np.all(batch.reward[~batch.relabeled] == -1.0)


def test_fetch_reward_comes_from_the_env_compute_reward() -> None:
    reward = family_of("FetchPush-v4").reward_fn("FetchPush-v4")
    achieved = np.zeros((3, 3), np.float32)
    goal = np.array([[0.0, 0.0, 0.0], [0.04, 0.0, 0.0], [0.1, 0.0, 0.0]], np.float32)
    assert reward(achieved, goal).tolist() == [0.0, 0.0, -1.0]
    dense = family_of("FetchPushDense-v4").reward_fn("FetchPushDense-v4")
    assert dense(achieved, goal) == pytest.approx([0.0, -0.04, -0.1])


def test_sampling_an_empty_replay_is_an_error() -> None:
    empty = EpisodeReplay(SHAPE, 100)
    with pytest.raises(ValueError, match="empty"):
        HerSampler(exact_match_reward).sample(empty, 4, np.random.default_rng(0))


def test_replay_overwrites_oldest_episodes_when_full() -> None:
    replay = EpisodeReplay(SHAPE, capacity_transitions=3 * HORIZON)
    for e in range(5):
        replay.add(EpisodeBatch(
            "t", np.full((1, HORIZON + 1, 2), e, np.float32),
            np.zeros((1, HORIZON + 1, 3), np.float32), np.zeros((1, HORIZON, 3), np.float32),
            np.zeros((1, HORIZON, 1), np.float32), np.zeros(1, np.float32), 0,
        ))
    assert replay.episodes == 3
    assert sorted(replay.obs[:, 0, 0].tolist()) == [2.0, 3.0, 4.0]


def moving_replay(motion: list[float]) -> EpisodeReplay:
    """Episode e's achieved goal travels ``motion[e]`` along x, in equal steps."""
    n = len(motion)
    replay = EpisodeReplay(SHAPE, capacity_transitions=(n + 2) * HORIZON)
    x = np.linspace(0, 1, HORIZON + 1)[None, :] * np.asarray(motion)[:, None]
    achieved = np.stack([x, 0 * x, 0 * x], -1).astype(np.float32)
    obs = np.repeat(np.arange(n, dtype=np.float32)[:, None, None], HORIZON + 1, 1)
    replay.add(EpisodeBatch(
        "moving", np.repeat(obs, 2, -1), achieved, np.zeros((n, HORIZON, 3), np.float32),
        np.zeros((n, HORIZON, 1), np.float32), np.zeros(n, np.float32), 0,
    ))
    return replay


def test_moved_goal_share_draws_episodes_in_proportion_to_goal_motion() -> None:
    replay = moving_replay([0.0, 0.1, 0.3, 0.0])
    assert replay.goal_motion[:4] == pytest.approx([0.0, 0.1, 0.3, 0.0])
    slots = replay.sample_slots(40_000, 1.0, np.random.default_rng(0))
    share = np.bincount(slots, minlength=replay.capacity) / len(slots)
    assert share[:4] == pytest.approx([0.0, 0.25, 0.75, 0.0], abs=0.01)
    assert share[4:].sum() == 0  # empty slots are never drawn


def test_moved_goal_share_mixes_with_uniform_draws() -> None:
    batch = HerSampler(exact_match_reward, "future", 4, moved_goal_share=0.5).sample(
        moving_replay([0.0, 0.0, 0.2, 0.0]), 40_000, np.random.default_rng(1)
    )
    share = np.bincount(batch.obs[:, 0].astype(int), minlength=4) / len(batch.obs)
    assert share == pytest.approx([0.125, 0.125, 0.625, 0.125], abs=0.01)


def test_moved_goal_share_is_uniform_while_nothing_moved() -> None:
    slots = moving_replay([0.0] * 4).sample_slots(40_000, 1.0, np.random.default_rng(2))
    assert np.bincount(slots) / len(slots) == pytest.approx([0.25] * 4, abs=0.01)


def test_forgotten_episodes_are_not_drawn_by_motion() -> None:
    replay = moving_replay([0.3, 0.1, 0.1, 0.1])
    replay.keep_newest(2)  # episodes 2 and 3 stay; 0, the one that moved most, is gone
    slots = replay.sample_slots(10_000, 1.0, np.random.default_rng(3))
    assert set(np.unique(slots)) == {2, 3}


def test_overwritten_episodes_are_drawn_by_their_own_motion() -> None:
    replay = moving_replay([0.3, 0.0])  # capacity 4 episodes
    later = moving_replay([0.0, 0.0, 0.1, 0.0, 0.25])
    for e in range(5):  # slots 2, 3, 0, 1, 2: the 0.3 episode in slot 0 is overwritten
        replay.add(EpisodeBatch("moving", later.obs[e:e + 1], later.achieved_goal[e:e + 1],
                                later.desired_goal[e:e + 1], later.action[e:e + 1],
                                np.zeros(1, np.float32), 0))
    slots = replay.sample_slots(20_000, 1.0, np.random.default_rng(4))
    share = np.bincount(slots, minlength=replay.capacity) / len(slots)
    assert share == pytest.approx(np.where(replay.goal_motion > 0,
                                           replay.goal_motion / replay.goal_motion.sum(), 0),
                                  abs=0.01)
    assert replay.goal_motion[:4] == pytest.approx([0.1, 0.0, 0.25, 0.0])
