"""Schedulers on simulated tasks (no RL): a solved task, a learnable one, a coin flip."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from common.spec import Scheduler
from meta.scheduler import build_scheduler

TASKS = ["solved", "learnable", "coin"]
WINDOW, PLATEAU, SPAN = 80, 160, 300
"""The learnable task stays at 0 for its first PLATEAU episodes, then rises over SPAN."""


def learnable_success(n: int) -> float:
    return float(np.clip((n - PLATEAU) / SPAN, 0.0, 1.0))


def simulate(
    name: str,
    seed: int,
    success: Callable[[str, dict[str, int]], float],
    stop: Callable[[dict[str, int], int], bool],
    **config,
) -> tuple[dict[str, int], list[str]]:
    """Run orders until ``stop``; returns episodes per task and the task of every episode."""
    scheduler = build_scheduler(Scheduler(name=name, window=WINDOW, **config), TASKS, seed)
    rng = np.random.default_rng(seed + 1000)
    counts = dict.fromkeys(TASKS, 0)
    log: list[str] = []
    while True:
        for task, n in scheduler.next_order(2):
            for _ in range(n):
                succeeded = rng.random() < success(task, counts)
                scheduler.record_success(TASKS.index(task), np.array([succeeded]))
                counts[task] += 1
                log.append(task)
                if stop(counts, len(log)):
                    return counts, log


def curve(task: str, counts: dict[str, int]) -> float:
    return {"solved": 1.0, "coin": 0.5, "learnable": learnable_success(counts["learnable"])}[task]


def until_mastered(counts: dict[str, int], total: int) -> bool:
    return learnable_success(counts["learnable"]) >= 0.9


def learning_phase_shares(log: list[str]) -> dict[str, float]:
    """Share of each task among episodes collected while the learnable task was learning."""
    seen, phase = 0, []
    for task in log:
        seen += task == "learnable"
        if 0.1 < learnable_success(seen) < 0.9:
            phase.append(task)
    return {t: phase.count(t) / len(phase) for t in TASKS}


def test_learning_progress_masters_the_learnable_task_in_fewer_episodes_than_uniform() -> None:
    lp = [len(simulate("learning_progress", s, curve, until_mastered)[1]) for s in range(5)]
    uniform = [len(simulate("uniform", s, curve, until_mastered)[1]) for s in range(5)]
    assert np.mean(lp) <= 0.8 * np.mean(uniform), (lp, uniform)


def test_learning_progress_gives_the_learning_task_most_episodes_and_the_coin_about_eps_over_k(
) -> None:
    shares = [learning_phase_shares(simulate("learning_progress", s, curve, until_mastered)[1])
              for s in range(5)]
    learnable = np.mean([s["learnable"] for s in shares])
    coin = np.mean([s["coin"] for s in shares])
    assert learnable >= 0.6, shares
    assert coin <= 0.2, shares  # ε/K = 0.067; uniform would give 1/3


def _coin_share_when_nothing_progresses(z: float) -> float:
    def flat(task: str, counts: dict[str, int]) -> float:
        return 0.5 if task == "coin" else 1.0

    shares = []
    for seed in range(4):
        _, log = simulate("learning_progress", seed, flat, lambda c, t: t >= 6000,
                          noise_floor_z=z)
        shares.append(log[1000:].count("coin") / len(log[1000:]))
    return float(np.mean(shares))


def test_noise_floor_keeps_a_coin_flip_task_from_looking_like_progress() -> None:
    without_floor = _coin_share_when_nothing_progresses(0.0)
    with_floor = _coin_share_when_nothing_progresses(2.0)
    assert without_floor > 0.5  # chance differences between windows read as progress
    assert with_floor < 0.4  # close to uniform (1/3): nothing progresses


def test_learning_progress_raises_a_forgotten_tasks_share() -> None:
    forget_at = 4000

    def forgetting(task: str, counts: dict[str, int]) -> float:
        if task == "solved":
            return 1.0 if sum(counts.values()) < forget_at else 0.0
        return 0.5 if task == "coin" else 1.0

    def peak_share(episodes: list[str], width: int = 200) -> float:
        hits = np.convolve([t == "solved" for t in episodes], np.ones(width), "valid")
        return float(hits.max() / width)

    for seed in range(3):
        _, log = simulate("learning_progress", seed, forgetting,
                          lambda c, t: t >= forget_at + 1000)
        before = peak_share(log[forget_at - 1000 : forget_at])
        after = peak_share(log[forget_at:])
        assert after > 0.7 > before, (seed, before, after)


def test_learnability_shares_favour_a_task_solved_half_the_time() -> None:
    scheduler = build_scheduler(Scheduler(name="learnability", window=10, epsilon=0.2), TASKS, 0)
    for task, successes in (("solved", [True] * 10), ("learnable", [True, False] * 5),
                            ("coin", [False] * 10)):  # here: a hopeless task
        scheduler.record_success(TASKS.index(task), np.array(successes))
    shares = scheduler.shares()
    assert shares == pytest.approx([0.2 / 3, 0.8 + 0.2 / 3, 0.2 / 3])


def test_learnability_masters_a_learning_task_beside_solved_and_hopeless_ones_sooner() -> None:
    def rising(task: str, counts: dict[str, int]) -> float:
        return {"solved": 1.0, "coin": 0.0,
                "learnable": min(1.0, 0.1 + counts["learnable"] / 400)}[task]

    def mastered(counts: dict[str, int], total: int) -> bool:
        return rising("learnable", counts) >= 0.9

    learnability = [len(simulate("learnability", s, rising, mastered)[1]) for s in range(5)]
    uniform = [len(simulate("uniform", s, rising, mastered)[1]) for s in range(5)]
    assert np.mean(learnability) <= 0.6 * np.mean(uniform), (learnability, uniform)


def test_round_robin_orders_cycle_through_tasks() -> None:
    scheduler = build_scheduler(Scheduler(name="round_robin"), TASKS, 0)
    orders = [scheduler.next_order(2) for _ in range(4)]
    assert orders == [[("solved", 6)], [("learnable", 6)], [("coin", 6)], [("solved", 6)]]
    assert np.allclose(scheduler.batch_shares(), 1 / 3)


def _staged(name: str, **config):
    return build_scheduler(
        Scheduler(name=name, window=10, threshold=0.8, order=["coin", "solved", "learnable"],
                  **config), TASKS, 0)


@pytest.mark.parametrize("name", ["curriculum", "sequential"])
def test_staged_schedulers_start_with_the_first_task_of_the_order(name: str) -> None:
    scheduler = _staged(name)
    assert scheduler.shares().tolist() == [0.0, 0.0, 1.0]
    assert {task for task, _ in scheduler.next_order(2)} == {"coin"}


def test_curriculum_moves_on_at_the_threshold_and_keeps_a_floor_for_passed_tasks() -> None:
    scheduler = _staged("curriculum", floor_share=0.1)
    scheduler.record_success(TASKS.index("coin"), np.array([True] * 7 + [False] * 3))
    assert scheduler.shares().tolist() == [0.0, 0.0, 1.0]  # 0.7 < 0.8: not passed
    scheduler.record_success(TASKS.index("coin"), np.ones(10, bool))
    assert np.allclose(scheduler.shares(), [0.9, 0.0, 0.1])  # solved entered, coin floor
    scheduler.record_success(TASKS.index("solved"), np.ones(10, bool))
    assert np.allclose(scheduler.shares(), [0.1, 0.8, 0.1])
    scheduler.record_success(TASKS.index("learnable"), np.ones(10, bool))
    assert np.allclose(scheduler.shares(), 1 / 3)  # all passed: uniform


def test_sequential_trains_one_task_at_a_time_and_stays_on_the_last() -> None:
    scheduler = _staged("sequential")
    scheduler.record_success(TASKS.index("coin"), np.ones(10, bool))
    assert scheduler.shares().tolist() == [1.0, 0.0, 0.0]
    scheduler.record_success(TASKS.index("solved"), np.ones(10, bool))
    scheduler.record_success(TASKS.index("learnable"), np.ones(10, bool))
    assert scheduler.shares().tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("name", ["uniform", "round_robin", "learning_progress", "learnability",
                                  "curriculum", "sequential"])
def test_scheduler_state_round_trips(name: str) -> None:
    a = build_scheduler(Scheduler(name=name, window=5), TASKS, 3)
    for task in TASKS:
        a.record_success(TASKS.index(task), np.array([True, False, True, True, False, True]))
    a.next_order(2)
    b = build_scheduler(Scheduler(name=name, window=5), TASKS, 99)
    b.load_state_dict(a.state_dict())
    assert np.allclose(a.shares(), b.shares())
    assert a.next_order(2) == b.next_order(2)
