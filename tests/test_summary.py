"""A run's summary: thresholds count when two evaluations in a row reach them; the table's
numbers against a hand-written metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.report.summary import first_sustained, format_summary, read_records, summarize_tasks


def rows(*success: float) -> list[dict]:
    return [{"env_steps": 25_000 * (i + 1), "success_rate": s} for i, s in enumerate(success)]


def test_a_single_evaluation_above_the_threshold_does_not_count() -> None:
    assert first_sustained(rows(0.2, 0.95, 0.8, 0.9, 0.95), 0.9)["env_steps"] == 100_000


def test_the_last_evaluation_counts_alone_and_none_when_never_reached() -> None:
    assert first_sustained(rows(0.2, 0.5, 0.9), 0.9)["env_steps"] == 75_000
    assert first_sustained(rows(0.2, 0.5), 0.9) is None


def write_metrics(run_dir: Path, records: list[dict]) -> None:
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records)
                                           + '{"event": "ev')  # a killed run's partial line


def evaluation(task: str, steps: int, minutes: float, success: float, share: float) -> dict:
    return {"event": "eval", "task": task, "env_steps": steps, "wall_time_s": minutes * 60,
            "success_rate": success, "collect_share": share}


def test_the_summary_of_a_hand_written_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    write_metrics(run_dir, [
        evaluation("FetchPush-v4", 100, 1.0, 0.6, 0.5),
        evaluation("FetchSlide-v4", 100, 1.0, 0.0, 0.5),
        {"event": "train", "env_steps": 150},
        evaluation("FetchPush-v4", 300, 3.0, 0.95, 0.25),
        evaluation("FetchSlide-v4", 300, 3.0, 0.1, 0.75),
        evaluation("FetchPush-v4", 400, 4.0, 0.9, 0.5),
        evaluation("FetchSlide-v4", 400, 4.0, 0.05, 0.5),
        {"event": "end", "env_steps": 400, "updates": 20, "wall_time_s": 245.0,
         "stopped": False},
    ])
    push, slide = summarize_tasks(read_records(run_dir / "metrics.jsonl"))
    assert (push.task, push.final_success, push.best_success) == ("FetchPush-v4", 0.9, 0.95)
    assert push.reached[0.5]["env_steps"] == 100 and push.reached[0.9]["env_steps"] == 300
    assert push.collect_share == pytest.approx((0.5 * 100 + 0.25 * 200 + 0.5 * 100) / 400)
    assert slide.reached == {0.5: None, 0.9: None} and slide.best_success == 0.1
    table = format_summary(run_dir).splitlines()
    assert table[0] == f"run {run_dir}: 400 env steps, 20 updates, 4.1 min"
    assert table[2].split()[:6] == ["FetchPush-v4", "0.90", "0.95", "100", "/", "1.0"]
    assert "not reached" in table[3] and table[3].endswith("0.62")


def test_a_killed_and_resumed_stretch_is_read_as_the_resumed_run_wrote_it(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    write_metrics(run_dir, [
        evaluation("FetchPush-v4", 100, 1.0, 0.2, 1.0),
        {"event": "train", "env_steps": 120},
        evaluation("FetchPush-v4", 200, 2.0, 0.9, 1.0),  # after the last checkpoint (150)
        {"event": "train", "env_steps": 220},
        # killed; resumed from the checkpoint at 150
        {"event": "train", "env_steps": 160},
        evaluation("FetchPush-v4", 200, 2.5, 0.4, 1.0),
        {"event": "train", "env_steps": 240},
    ])
    records = read_records(run_dir / "metrics.jsonl")
    assert [(r["event"], r["env_steps"], r.get("success_rate")) for r in records] == [
        ("eval", 100, 0.2), ("train", 120, None), ("train", 160, None), ("eval", 200, 0.4),
        ("train", 240, None)]
