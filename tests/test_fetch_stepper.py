"""The direct-MuJoCo Fetch stepper gives exactly gymnasium-robotics' own observations and
successes, step by step, for every Fetch task."""

from __future__ import annotations

import numpy as np
import pytest

from common.envs import FetchFamily, family_of
from common.fetch_stepper import FetchStepper

TASKS = ["FetchReach-v4", "FetchPush-v4", "FetchPickAndPlace-v4", "FetchSlide-v4"]


def _reference_episode(task: str, seed: int, actions: np.ndarray):
    env = family_of(task).make(task)
    obs, _ = env.reset(seed=seed)
    steps = [(obs, None)]
    for action in actions:
        obs, _, _, _, info = env.step(action)
        steps.append((obs, info["is_success"]))
    env.close()
    return steps


@pytest.mark.parametrize("task", TASKS)
def test_stepper_matches_the_gymnasium_env_bit_for_bit(task: str) -> None:
    rng = np.random.default_rng(3)
    seeds, horizon = [11, 12], 50
    # actions past the bounds too: the stepper must clip as the env does
    actions = rng.uniform(-1.3, 1.3, (horizon, len(seeds), 4)).astype(np.float32)
    stepper = FetchFamily().make_stepper(task, len(seeds))
    assert isinstance(stepper, FetchStepper)
    got = [(stepper.reset(seeds), None)]
    got += [stepper.step(actions[t]) for t in range(horizon)]
    stepper.close()
    moved = False
    for e, seed in enumerate(seeds):
        expected = _reference_episode(task, seed, actions[:, e])
        for t, ((obs, success), (ref_obs, ref_success)) in enumerate(
                zip(got, expected, strict=True)):
            for key in ("observation", "achieved_goal", "desired_goal"):
                np.testing.assert_array_equal(obs[key][e], ref_obs[key],
                                              err_msg=f"{task} env {e} step {t} {key}")
            if ref_success is not None:
                assert success[e] == ref_success
        moved |= not np.array_equal(expected[0][0]["achieved_goal"],
                                    expected[-1][0]["achieved_goal"])
    assert moved  # the episode exercised more than a resting scene


def test_stepper_reports_success_when_the_goal_is_reached() -> None:
    stepper = FetchFamily().make_stepper("FetchReach-v4", 1)
    obs = stepper.reset([5])
    for _ in range(50):  # a proportional controller on the gripper reaches the goal
        delta = (obs["desired_goal"] - obs["achieved_goal"]) / 0.05
        action = np.concatenate([np.clip(delta, -1, 1), np.zeros((1, 1))], 1)
        obs, success = stepper.step(action.astype(np.float32))
    stepper.close()
    assert success[0] == 1.0


def test_a_grasped_start_holds_the_object_as_the_gripper_lifts_and_drops_it_when_opened(
) -> None:
    task = "FetchPickAndPlace-v4"
    stepper = FetchFamily().make_stepper(task, 2)
    plain = FetchFamily().make_stepper(task, 1)
    obs = stepper.reset([5, 6], grasped=[True, False])
    reference = plain.reset([5])
    # the goal and the untouched env are the env's own; the object sits at the grip
    assert np.array_equal(obs["desired_goal"][0], reference["desired_goal"][0])
    assert np.array_equal(obs["observation"][1], FetchFamily().make_stepper(task, 1)
                          .reset([6])["observation"][0])
    grip, held = obs["observation"][0, :3], obs["achieved_goal"][0]
    assert np.linalg.norm(held - grip) < 1e-6 and held[2] > reference["achieved_goal"][0, 2] + 0.05
    up_closed = np.tile(np.float32([0.0, 0.0, 1.0, -1.0]), (2, 1))
    for _ in range(10):
        obs, _ = stepper.step(up_closed)
    lifted = obs["achieved_goal"][0]
    assert lifted[2] > held[2] + 0.2  # carried up with the gripper
    assert np.linalg.norm(lifted - obs["observation"][0, :3]) < 0.03
    for _ in range(15):
        obs, _ = stepper.step(np.tile(np.float32([0.0, 0.0, 0.0, 1.0]), (2, 1)))
    assert obs["achieved_goal"][0, 2] < lifted[2] - 0.2  # opened: it falls
    stepper.close()
    plain.close()


def test_only_an_object_task_can_start_grasped() -> None:
    stepper = FetchFamily().make_stepper("FetchPush-v4", 1)  # the gripper is blocked
    with pytest.raises(ValueError, match="FetchPush-v4: a grasped start needs"):
        stepper.reset([1], grasped=[True])
    stepper.close()


def test_grasped_flags_must_match_the_envs() -> None:
    stepper = FetchFamily().make_stepper("FetchPickAndPlace-v4", 2)
    with pytest.raises(ValueError, match="1 grasped flags for 2 envs"):
        stepper.reset([1, 2], grasped=[True])
    stepper.close()
