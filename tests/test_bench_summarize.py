"""bench.summarize: which run directories count as measured."""

from __future__ import annotations

import json
from pathlib import Path

from bench.summarize import finished, summarize


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


def test_a_benchmark_counts_a_threshold_as_the_run_summary_does(tmp_path: Path) -> None:
    evals = [{"event": "eval", "task": "Reach", "env_steps": 500 * (k + 1),
              "wall_time_s": 10.0 * (k + 1), "success_rate": s}
             for k, s in enumerate([0.2, 0.95, 0.8, 0.95, 1.0, 0.9])]
    _write(tmp_path / "reach", *evals)
    reach = summarize(tmp_path / "reach", 0.95)["Reach"]
    assert reach["env_steps_to_threshold"] == 2000  # not the lone 0.95 at 1,000
    assert reach["wall_s_to_threshold"] == 40.0
    assert (reach["final_success"], reach["best_success"]) == (0.9, 1.0)
