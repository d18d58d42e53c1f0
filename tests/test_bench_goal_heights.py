"""bench.goal_heights: success split by goal height."""

import math

import numpy as np

from bench.goal_heights import split_by_height


def test_split_counts_and_rates_each_group_separately() -> None:
    goal_z = np.array([0.425, 0.425, 0.425, 0.60, 0.80])
    success = np.array([True, True, False, False, True])
    split = split_by_height(goal_z, success)
    assert split["all"] == {"episodes": 5, "success": 0.6}
    assert split["table"]["episodes"] == 3
    assert math.isclose(split["table"]["success"], 2 / 3)
    assert split["air"] == {"episodes": 2, "success": 0.5}


def test_a_group_without_episodes_has_no_rate() -> None:
    split = split_by_height(np.array([0.425, 0.425]), np.array([True, False]))
    assert split["air"]["episodes"] == 0
    assert math.isnan(split["air"]["success"])
    assert split["table"]["success"] == 0.5
