"""A run's per-task summary from its metrics.jsonl: final and best success, env steps and
wall-clock to 0.5 and 0.9, each task's share of collection. Printed at the end of a run
and by ``main.py summary RUN_DIR``."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

THRESHOLDS = (0.5, 0.9)


def read_records(metrics_path: Path) -> list[dict]:
    """The records of a metrics.jsonl as the run's :func:`history` (none if it is missing)."""
    if not metrics_path.exists():
        return []
    with open(metrics_path) as lines:
        return history(lines)


def history(lines: Iterable[str]) -> list[dict]:
    """The records of metrics.jsonl lines as the run's history: a partial line of a killed
    run skipped, and the stretch a killed run lost replaced.

    A run killed after its last checkpoint and resumed writes that stretch again from the
    checkpoint's env steps: when a record's env steps go back below those of an earlier
    record of its kind (event, task, observer), the records from there on are dropped.
    """
    records: list[dict] = []
    latest: dict[tuple, int] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        steps = record.get("env_steps")
        if isinstance(steps, int):
            kind = _kind(record)
            if steps < latest.get(kind, -1):
                records = [r for r in records if not r.get("env_steps", -1) >= steps]
                latest = _latest_by_kind(records)
            latest[kind] = max(latest.get(kind, -1), steps)
        records.append(record)
    return records


def _kind(record: dict) -> tuple:
    return record.get("event"), record.get("task"), record.get("observer")


def _latest_by_kind(records: list[dict]) -> dict[tuple, int]:
    latest: dict[tuple, int] = {}
    for record in records:
        if isinstance(record.get("env_steps"), int):
            kind = _kind(record)
            latest[kind] = max(latest.get(kind, -1), record["env_steps"])
    return latest


def first_sustained(evals: list[dict], threshold: float) -> dict | None:
    """The first evaluation at or above ``threshold`` whose successor is too (the last
    evaluation counts alone), or None: one lucky evaluation does not count."""
    for row, after in zip(evals, [*evals[1:], None], strict=True):
        if row["success_rate"] >= threshold and (after is None
                                                 or after["success_rate"] >= threshold):
            return row
    return None


@dataclass
class TaskSummary:
    task: str
    final_success: float
    final_env_steps: int
    """Env steps of the last evaluation (where ``final_success`` was measured)."""
    best_success: float
    reached: dict[float, dict | None]
    """Per threshold: the evaluation record where it was first sustained, or None."""
    collect_share: float
    """Share of the run's training episodes collected for this task."""


def summarize_tasks(records: list[dict], thresholds: tuple[float, ...] = THRESHOLDS
                    ) -> list[TaskSummary]:
    """One summary per task that has evaluations, in the order tasks first appear, with
    where each of ``thresholds`` was first sustained."""
    evals: dict[str, list[dict]] = {}
    for record in records:
        if record.get("event") == "eval":
            evals.setdefault(record["task"], []).append(record)
    summaries = []
    for task, rows in evals.items():
        steps = [0] + [r["env_steps"] for r in rows]
        window = [b - a for a, b in itertools.pairwise(steps)]
        shares = [r.get("collect_share", 0.0) for r in rows]
        share = sum(s * w for s, w in zip(shares, window, strict=True)) / max(sum(window), 1)
        summaries.append(TaskSummary(
            task, rows[-1]["success_rate"], rows[-1]["env_steps"],
            max(r["success_rate"] for r in rows),
            {t: first_sustained(rows, t) for t in thresholds}, share,
        ))
    return summaries


def _reached(record: dict | None) -> str:
    if record is None:
        return "not reached"
    return f"{record['env_steps']:,} / {record['wall_time_s'] / 60:.1f} min"


def format_summary(run_dir: Path) -> str:
    """The table printed at the end of a run."""
    records = read_records(run_dir / "metrics.jsonl")
    end = next((r for r in reversed(records) if r.get("event") == "end"), None)
    lines = [f"run {run_dir}"]
    if end is not None:
        stopped = " (stopped)" if end.get("stopped") else ""
        lines[0] += (f": {end['env_steps']:,} env steps, {end['updates']:,} updates, "
                     f"{end['wall_time_s'] / 60:.1f} min{stopped}")
    header = (f"{'task':<24} {'final':>5} {'best':>5}  "
              + "".join(f"{'to ' + str(t) + ' (env steps / wall)':<30}" for t in THRESHOLDS)
              + "collect share")
    lines.append(header)
    for s in summarize_tasks(records):
        lines.append(f"{s.task:<24} {s.final_success:>5.2f} {s.best_success:>5.2f}  "
                     + "".join(f"{_reached(s.reached[t]):<30}" for t in THRESHOLDS)
                     + f"{s.collect_share:.2f}")
    if len(lines) == 2:
        lines.append("(no evaluation yet)")
    lines.append("success at 0.5/0.9: first of two evaluations in a row at or above it")
    lines.append(f"curves: {run_dir / 'success.png'}")
    if (run_dir / "videos").is_dir():
        lines.append(f"videos: {run_dir / 'videos'}")
    return "\n".join(lines)
