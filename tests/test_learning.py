"""Does it learn: FetchReach through the full product path (main.py, RPC observers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import QUIET, REACH_3K, read_metrics, run_main

pytestmark = pytest.mark.slow


def test_fetch_reach_reaches_90_percent_within_3k_env_steps(tmp_path: Path) -> None:
    run_dir = tmp_path / "reach"
    result = run_main(
        "--spec", "specs/fetch_reach.yaml", "--run-dir", str(run_dir),
        *REACH_3K, *QUIET, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [r for r in read_metrics(run_dir) if r["event"] == "eval"]
    final = evals[-1]
    assert (final["env_steps"], final["updates"]) == (3000, 1500)  # the final weights
    assert final["success_rate"] >= 0.9, evals


@pytest.mark.parametrize("arch", ["multihead", "ptsl", "lora"])
def test_each_architecture_learns_fetch_reach(tmp_path: Path, arch: str) -> None:
    run_dir = tmp_path / arch
    result = run_main(
        "--spec", "specs/fetch_reach.yaml", "--run-dir", str(run_dir),
        *REACH_3K, "--set", f"model.arch={arch}", *QUIET, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [r for r in read_metrics(run_dir) if r["event"] == "eval"]
    assert evals[-1]["success_rate"] >= 0.9, evals
