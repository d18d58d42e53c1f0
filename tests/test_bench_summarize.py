"""bench.summarize: which run directories count as measured."""

from __future__ import annotations

import json
from pathlib import Path

from bench.summarize import finished


def _write(run_dir: Path, *events: str) -> None:
    run_dir.mkdir()
    with open(run_dir / "metrics.jsonl", "w") as out:
        for event in events:
            out.write(json.dumps({"event": event}) + "\n")


def test_only_a_run_with_an_end_record_counts_as_measured(tmp_path: Path) -> None:
    _write(tmp_path / "ended", "train", "eval", "end")
    _write(tmp_path / "killed", "train", "eval")
    assert finished(tmp_path / "ended")
    assert not finished(tmp_path / "killed")
    assert not finished(tmp_path / "never_started")
