"""Meta-World v3 tasks on the goal-env data path: shapes, the stored dense reward, success
at any step, train variations per episode, MT10 in a spec, never relabeled."""

from __future__ import annotations

import numpy as np
import pytest

from agent.learn.build import build_batcher
from common.envs import MT10, TaskShape, family_of, task_shape
from common.policy import build_encoder
from common.spec import validate_spec


def stepped(task: str, seed: int, steps: int) -> tuple[list, list, list]:
    """Observations, rewards and infos of ``steps`` random-action steps of one episode."""
    env = family_of(task).make(task)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards, infos = [obs], [], [info]
    for _ in range(steps):
        obs, reward, terminated, _, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        assert not terminated
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    env.close()
    return observations, rewards, infos


def test_metaworld_task_shapes() -> None:
    assert task_shape("reach-v3") == TaskShape(obs_dim=39, goal_dim=1, action_dim=4, horizon=500)


def test_her_reward_equals_the_envs_own_dense_reward_scaled_to_minus_one_zero() -> None:
    observations, rewards, _ = stepped("push-v3", seed=4, steps=40)
    achieved = np.array([o["achieved_goal"] for o in observations[1:]])
    desired = np.array([o["desired_goal"] for o in observations[1:]])
    recomputed = family_of("push-v3").reward_fn("push-v3")(achieved, desired)
    assert np.allclose(recomputed, np.array(rewards, np.float32), atol=1e-6)
    assert np.all((recomputed >= -1) & (recomputed <= 0)) and np.ptp(recomputed) > 0


def test_success_counts_from_the_first_solved_step() -> None:
    """reach-v3 under random actions is solved now and then; once solved, the episode counts
    as solved to its end (Meta-World's evaluation stops at the first success). Seed 16 is
    the first from 0 up whose episode is solved and then left (searching from 0: 10 s)."""
    for seed in range(16, 36):
        _, _, infos = stepped("reach-v3", seed, 500)
        raw = np.array([i.get("success", 0.0) for i in infos[1:]]) > 0.5
        sticky = np.array([i["is_success"] for i in infos[1:]]) > 0.5
        assert np.array_equal(sticky, np.maximum.accumulate(raw))
        if raw.any() and not raw[-1]:
            return
    pytest.fail("no random reach-v3 episode was solved and then left")


def test_each_reset_draws_a_train_variation_by_its_seed() -> None:
    """Through the vector env observers use: every reset sets the variation its seed picks."""
    env = family_of("reach-v3").make_vector("reach-v3", 2)
    try:
        starts = [env.reset(seed=seeds)[0]["observation"] for seeds in ([1, 2], [3, 4], [1, 2])]
    finally:
        env.close()
    assert np.array_equal(starts[0], starts[2])
    rows = {tuple(row.round(6)) for start in starts[:2] for row in start}
    assert len(rows) == 4


def test_mt10_names_are_metaworlds_own() -> None:
    """common.envs spells MT10 out so that a spec is checked without importing metaworld."""
    from metaworld import env_dict

    assert tuple(env_dict.MT10_V3) == MT10


def test_mt10_in_a_spec_is_its_ten_tasks_and_they_are_never_relabeled() -> None:
    spec = validate_spec({"tasks": ["MT10"], "budget": {"env_steps": 1000}}, "mt10")
    assert spec.tasks == list(MT10)
    subset = validate_spec({"tasks": ["reach-v3", "push-v3"], "budget": {"env_steps": 1000}},
                           "two")
    batcher = build_batcher(subset, build_encoder(subset), 10_000, np.random.default_rng(0))
    assert all(sampler.relabel_prob == 0.0 for sampler in batcher.samplers)


def test_metaworld_renders_offscreen_frames_of_the_asked_size() -> None:
    env = family_of("push-v3").make_rendering("push-v3", 64)
    try:
        env.reset(seed=0)
        frame = env.render()
    finally:
        env.close()
    assert frame.shape == (64, 64, 3) and frame.std() > 0
