"""A full disk stops a run with one line naming the path; the last checkpoint stays whole
and resumable, and no temporary file is left behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LIGHT, QUIET, read_metrics, run_main


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with 1.5 MB left (needs root, as on this project's machines and CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        (mount / "filler").write_bytes(bytes(shutil.disk_usage(mount).free - 1_500_000))
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_one_line_and_the_checkpoint_resumes(
    small_disk: Path, tmp_path: Path
) -> None:
    run_dir = small_disk / "run"
    # wandb offline and TensorBoard on: every sink meets the full disk too
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(run_dir), *LIGHT,
                      "--set", "metrics.progress_bar=false", "--set", "budget.env_steps=20000",
                      "--set", "checkpoint.every_env_steps=1000",
                      "--set", "eval.every_env_steps=100000", timeout=600)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0].startswith("run directory:"), lines[-5:]
    assert lines[1].startswith("error:") and "no space left on device" in lines[1]
    assert str(run_dir) in lines[1]
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert not list(run_dir.rglob("*.tmp"))
    stopped_at = read_metrics(run_dir)[-1]["env_steps"] if (run_dir / "metrics.jsonl").stat(
    ).st_size else 0
    # the disk freed (the run moved), the last good checkpoint resumes to a larger budget
    moved = tmp_path / "moved"
    subprocess.run(["cp", "-r", str(run_dir), str(moved)], check=True)
    resumed = run_main("--resume", str(moved), *QUIET, "--set",
                       f"budget.env_steps={max(stopped_at, 1000) + 1000}", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_metrics(moved)[-1]["event"] == "end"
