"""Transfer through main.py: a new run starts from another run's checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import QUIET, REACH_3K, read_metrics, run_main

pytestmark = pytest.mark.slow


def test_new_task_starts_from_a_learned_tasks_network(tmp_path: Path) -> None:
    source = tmp_path / "source"
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(source),
                      *REACH_3K, *QUIET, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    target = tmp_path / "target"
    result = run_main(
        "--spec", "specs/fetch_reach.yaml", "--run-dir", str(target),
        "--set", "tasks=[FetchReachDense-v4, FetchReach-v4]",
        "--set", f"transfer.from_checkpoint={source}/checkpoints/latest.pt",
        "--set", "transfer.lr_multiplier=0.5", "--set", "budget.env_steps=600",
        "--set", "eval.every_env_steps=200", "--set", "eval.episodes=20",
        "--set", "learner.start_after_env_steps=400", "--set", "metrics.every_updates=100",
        *QUIET, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_metrics(target)
    first = [r for r in records if r["event"] == "eval"][:2]
    first_tasks = {r["task"] for r in first}
    assert first_tasks == {"FetchReachDense-v4", "FetchReach-v4"}
    assert all(r["updates"] == 0 for r in first)  # no update yet: all of it is transfer
    assert all(r["success_rate"] >= 0.8 for r in first), first
    # Observers collected with the transferred policy from the start (exploring): the first
    # train record holds the 12 episodes before and during the first 100 updates (measured
    # 0.83 with transfer; a policy that starts from scratch rarely succeeds there).
    train = next(r for r in records if r["event"] == "train")
    collected = [train[f"collect/success_rate/{task}"] for task in first_tasks]
    assert sum(collected) / len(collected) >= 0.5, train


def test_unusable_transfer_source_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(tmp_path / "r"),
                      "--set", "transfer.from_checkpoint=/nonexistent.pt", *QUIET, timeout=120)
    assert result.returncode == 2
    assert "transfer.from_checkpoint" in result.stderr and "Traceback" not in result.stderr
