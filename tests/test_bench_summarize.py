"""bench.summarize: which run directories count as measured."""

from __future__ import annotations

import json
from pathlib import Path

from bench.summarize import finished


def _write(run_dir: Path, *records: dict) -> None:
    run_dir.mkdir()
    with open(run_dir / "metrics.jsonl", "w") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")


def test_only_a_run_that_reached_its_budget_counts_as_measured(tmp_path: Path) -> None:
    train, stop, end = {"event": "train"}, {"event": "end", "stopped": True}, {
        "event": "end", "stopped": False}
    _write(tmp_path / "ended", train, end)
    _write(tmp_path / "resumed_to_the_end", train, stop, train, end)
    _write(tmp_path / "stopped", train, stop)
    _write(tmp_path / "killed", train)
    assert finished(tmp_path / "ended") and finished(tmp_path / "resumed_to_the_end")
    assert not finished(tmp_path / "stopped")
    assert not finished(tmp_path / "killed")
    assert not finished(tmp_path / "never_started")
