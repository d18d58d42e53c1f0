"""Panda (panda-gym) tasks next to Fetch ones: shapes, HER rewards, and one policy over
tasks whose action sizes differ (padded actions, masked outputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.learn.build import build_batcher, build_learner
from agent.update_types import Batch
from common.envs import TaskShape, family_of, task_shape
from common.policy import build_encoder, build_policy
from common.spec import validate_spec
from observer.rollout import Rollout

PANDA_SHAPES = {  # obs, goal, action, horizon
    "PandaReach-v3": (6, 3, 3, 50),
    "PandaPush-v3": (18, 3, 3, 50),
    "PandaSlide-v3": (18, 3, 3, 50),
    "PandaPickAndPlace-v3": (19, 3, 4, 50),
    "PandaStack-v3": (31, 6, 4, 100),
    "PandaFlip-v3": (20, 4, 4, 50),
}


@pytest.mark.parametrize("task", sorted(PANDA_SHAPES))
def test_panda_task_shapes(task: str) -> None:
    assert task_shape(task) == TaskShape(*PANDA_SHAPES[task])
    dense = task.replace("-v3", "Dense-v3")
    assert task_shape(dense) == task_shape(task)


@pytest.mark.parametrize("task", [*sorted(PANDA_SHAPES), "PandaPushDense-v3",
                                  "FetchPush-v4", "FetchPickAndPlaceDense-v4"])
def test_her_reward_equals_the_envs_own_reward_on_stepped_transitions(task: str) -> None:
    """The reward HER recomputes from (achieved goal, desired goal) is the one the env gave
    at that step (PandaFlip's batched compute_reward is not row-wise: handled)."""
    family = family_of(task)
    env = family.make(task)
    obs, _ = env.reset(seed=3)
    achieved, desired, rewards = [], [], []
    for _ in range(30):
        action = np.random.default_rng(len(rewards)).uniform(-1, 1, env.action_space.shape)
        obs, reward, _, _, _ = env.step(action.astype(np.float32))
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
    env.close()
    recomputed = family.reward_fn(task)(np.array(achieved), np.array(desired))
    assert recomputed.shape == (30,)
    assert np.allclose(recomputed, np.array(rewards, np.float32), atol=1e-6)


MIXED = {"tasks": ["FetchReach-v4", "PandaReach-v3", "PandaPickAndPlace-v3"],
         "budget": {"env_steps": 1000}, "learner": {"hidden_sizes": [16, 16]}}


def test_one_policy_collects_each_task_with_its_own_action_size() -> None:
    """Envs refuse actions of the wrong size (ValueError), so collecting every task proves
    each env got its own size; replays store them unpadded."""
    spec = validate_spec(MIXED, "test")
    policy = build_policy(spec)
    shapes = policy.encoder.shapes
    rollout = Rollout(spec.tasks, shapes, policy, 2, 0.2, 0.3)
    try:
        rng = np.random.default_rng(0)
        for task, size in zip(spec.tasks, (4, 3, 4), strict=True):
            for exploring in (True, False):
                batch = rollout.collect(task, 2, exploring, rng)
                assert batch.action.shape == (2, 50, size), task
                assert np.abs(batch.action).max() <= 1.0
    finally:
        rollout.close()


def _mixed_batch(spec_overrides: dict) -> tuple[Batch, object, list[int]]:
    spec = validate_spec({**MIXED, **spec_overrides}, "test")
    encoder = build_encoder(spec)
    batcher = build_batcher(spec, encoder, 10_000, np.random.default_rng(0))
    policy = build_policy(spec)
    rollout = Rollout(spec.tasks, encoder.shapes, policy, 2, 0.2, 0.3)
    try:
        for task, replay in zip(spec.tasks, batcher.replays, strict=True):
            replay.add(rollout.collect(task, 2, True, np.random.default_rng(1)))
    finally:
        rollout.close()
    batch = batcher.sample(96, np.full(3, 1 / 3))
    return batch, build_learner(spec, encoder), encoder.action_dims


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_no_gradient_reaches_a_padded_action_output(algo: str) -> None:
    """A batch mixing 3- and 4-dimensional action tasks: PandaReach's 4th output (its own
    head row, multihead) gets exactly no gradient from the actor loss, the 4-dimensional
    tasks' rows do; stored actions are zero-padded and the actor's padded outputs are zero."""
    batch, learner, action_dims = _mixed_batch(
        {"learner": {"hidden_sizes": [16, 16], "algo": algo, "policy_delay": 1},
         "model": {"arch": "multihead"}})
    assert batch.action.shape[1] == 4
    panda_reach = batch.task == 1
    assert torch.all(batch.action[panda_reach, 3] == 0.0)
    assert torch.all(learner.actor(batch.obs)[panda_reach, 3] == 0.0)
    learner.update(batch, torch.full((3,), 1 / 3))
    head = learner.actor.task_heads
    per_action = 2 if algo == "sac" else 1  # SAC's head gives a mean and a log std per action
    for task, size in enumerate(action_dims):
        rows = [a + k * 4 for k in range(per_action) for a in range(4)]
        grads = head.weight.grad[task, rows].abs().sum(-1).view(per_action, 4)
        padded = grads[:, size:]
        assert torch.all(padded == 0.0), (task, grads)
        assert torch.all(grads[:, :size] > 0.0), (task, grads)


def test_sac_entropy_targets_follow_each_tasks_action_size() -> None:
    _, learner, action_dims = _mixed_batch({"learner": {"hidden_sizes": [16], "algo": "sac"}})
    assert learner.target_entropy.tolist() == [-4.0, -3.0, -4.0] and action_dims == [4, 3, 4]


def test_td3_target_actions_keep_padded_dimensions_at_zero() -> None:
    """Target policy smoothing noise must not leak into a padded action dimension."""
    batch, learner, _ = _mixed_batch({"learner": {"hidden_sizes": [16], "target_noise": 0.5}})
    seen: list[torch.Tensor] = []
    critic = learner.critics_target[0]
    critic.register_forward_hook(lambda module, args, out: seen.append(args[1]))
    learner.td_target(batch)
    assert torch.all(seen[0][batch.task == 1, 3] == 0.0)
    assert torch.any(seen[0][batch.task == 0, 3] != 0.0)


def test_panda_renders_offscreen_frames_of_the_asked_size() -> None:
    """Videos of Panda tasks: pybullet's own CPU renderer, no display or EGL needed."""
    env = family_of("PandaPush-v3").make_rendering("PandaPush-v3", 96)
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8 and frame.std() > 10
    finally:
        env.close()


def test_action_penalty_averages_over_each_tasks_own_action_dimensions() -> None:
    _, learner, _ = _mixed_batch({"learner": {"hidden_sizes": [16], "action_l2": 2.0}})
    full = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    assert learner._action_penalty(full, torch.tensor([0, 1])).tolist() == [2.0, 2.0]
