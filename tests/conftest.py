"""Shared helpers: run main.py as a user would, read metrics.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
