"""bench.push: the figure it reports is the first of two evaluations in a row at a threshold."""

from __future__ import annotations

from bench.push import first_sustained


def rows(*success: float) -> list[dict]:
    return [{"env_steps": 25_000 * (i + 1), "success_rate": s} for i, s in enumerate(success)]


def test_a_single_evaluation_above_the_threshold_does_not_count() -> None:
    assert first_sustained(rows(0.2, 0.95, 0.8, 0.9, 0.95), 0.9)["env_steps"] == 100_000


def test_the_last_evaluation_counts_alone_and_none_when_never_reached() -> None:
    assert first_sustained(rows(0.2, 0.5, 0.9), 0.9)["env_steps"] == 75_000
    assert first_sustained(rows(0.2, 0.5), 0.9) is None
