"""Shared helpers: run main.py as a user would, read metrics.jsonl."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"]


def reach_judged_at(env_steps: int) -> list[str]:
    """Settings for a FetchReach run of ``env_steps``, judged on 20 episodes of its final
    weights only. Measured: 1.0 by 2,500 env steps for every architecture (2 seeds each),
    by 2,000 for two MPI ranks at batch 128 each (2 seeds) and for the demo (3 seeds)."""
    return ["--set", f"budget.env_steps={env_steps}", "--set", "eval.every_env_steps=1000000",
            "--set", "eval.episodes=20"]
# For runs that test the machinery, not learning: a small learner with few updates (so the
# run is collection-bound: its env steps tell its wall-clock) and short evaluations.
LIGHT = ["--set", "learner.batch_size=64", "--set", "learner.hidden_sizes=[64,64]",
         "--set", "learner.updates_per_env_step=0.1", "--set", "eval.episodes=2"]


def egl_available() -> bool:
    """Whether offscreen rendering (videos) can work here."""
    try:
        ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False
    return True


NEEDS_EGL = pytest.mark.skipif(
    not egl_available(), reason="no EGL library for offscreen rendering "
    "(Debian: libegl1 libegl-mesa0 libgl1-mesa-dri libgles2)")


def pytest_configure(config: pytest.Config) -> None:
    """Learners built in this process get one torch thread, as the launcher gives them
    (``learner.torch_threads``): an idle OpenMP team spins on a busy 2-core box."""
    torch.set_num_threads(1)


def main_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_main(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python main.py ARGS`` from the repo root; output captured as text."""
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=REPO, env=main_env(),
        capture_output=True, text=True, timeout=timeout,
    )


def start_main(log: Path, *args: str) -> subprocess.Popen:
    """``python main.py ARGS`` in its own session (so its process group can be checked)."""
    return subprocess.Popen(
        [sys.executable, "main.py", *args], cwd=REPO, env=main_env(),
        stdout=subprocess.DEVNULL, stderr=log.open("w"), start_new_session=True,
    )


class ListSink:
    """A metrics sink that keeps every record in memory."""

    def __init__(self) -> None:
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.jsonl") as lines:
        return [json.loads(line) for line in lines]
