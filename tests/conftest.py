"""Shared helpers: run main.py as a user would, read metrics.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUIET = ["--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"]


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


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.jsonl") as lines:
        return [json.loads(line) for line in lines]


@pytest.fixture
def tiny_spec(tmp_path: Path) -> Path:
    """Two tasks of different observation sizes, a few hundred steps, two observers."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        """
tasks: [FetchReach-v4, FetchPush-v4]
seed: 3
observers: 2
budget: {env_steps: 1200}
eval: {every_env_steps: 400, episodes: 4}
collect: {envs_per_observer: 2, episodes_per_task: 2, weights_every_updates: 10}
learner: {batch_size: 64, updates_per_env_step: 0.25, start_after_env_steps: 200,
          hidden_sizes: [64, 64]}
metrics: {every_updates: 20}
checkpoint: {every_env_steps: 400}
"""
    )
    return path
