"""Summarize run directories: env steps and wall-clock to a success threshold, per task.

    python bench/summarize.py RUN_DIR [RUN_DIR ...] [--threshold 0.9]
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from agent.checkpoint import LATEST
from agent.report.summary import THRESHOLDS, history, read_records, summarize_tasks
from common.spec import Spec

QUIET = ["--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"]
RESULTS = Path("bench/results")
"""Finished benchmark runs kept in the repository: ``bench/out/<bench>/<run>`` as
``bench/results/<bench>/<run>.jsonl.gz`` (its metrics.jsonl), ``<run>.spec.yaml`` and,
for a run others start from, ``<run>.pt`` (its last checkpoint). A benchmark so spans
sessions whose machines are gone."""
SPEC = ".spec.yaml"
"""Suffix of a kept run's resolved spec (its run directory's spec.yaml)."""


def train(spec: str, run_dir: Path, overrides: list[str], minutes: float | None = None) -> None:
    """Bring ``run_dir`` to the end of its budget: skip a finished run, resume one that was
    stopped or killed after a checkpoint, else train ``main.py --spec spec`` from scratch.

    ``overrides`` are ``--set=KEY=VALUE`` arguments; ``minutes`` stops the run (SIGINT,
    checkpointed: a later call resumes it) after that much wall-clock. main.py's stderr
    goes to ``<run_dir>.stderr.log``. A benchmark can so span several sessions.
    """
    if finished(run_dir):
        return  # measured; delete the directory to measure again
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    if (run_dir / "checkpoints" / LATEST).exists():
        command = ["--resume", str(run_dir)]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        command = ["--spec", spec, "--run-dir", str(run_dir)]
    log = run_dir.with_name(f"{run_dir.name}.stderr.log")  # a file: a pipe nobody reads
    with log.open("a") as stderr:                        # fills and stalls a long run
        process = subprocess.Popen([sys.executable, "main.py", *command, *QUIET, *overrides],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            process.wait(timeout=minutes * 60 if minutes else None)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            process.wait()
    if process.returncode != 0:
        raise SystemExit(f"error: {run_dir} exited {process.returncode}: "
                         f"{log.read_text()[-2000:]}")


def kept(run_dir: Path, suffix: str = ".jsonl.gz") -> Path:
    """Where the finished run of ``run_dir`` is kept (``.pt``: its checkpoint)."""
    return RESULTS / run_dir.parent.name / f"{run_dir.name}{suffix}"


def kept_runs(out: Path) -> list[Path]:
    """The run directories under ``out`` (a ``bench/out/<bench>``) of its kept runs."""
    return sorted(out / path.name.removesuffix(".jsonl.gz")
                  for path in (RESULTS / out.name).glob("*.jsonl.gz"))


def keep(run_dir: Path, checkpoint: bool = False) -> None:
    """Keep a finished run's records and resolved spec (and its last checkpoint) under
    :data:`RESULTS`."""
    kept(run_dir).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "spec.yaml", kept(run_dir, SPEC))
    if checkpoint:
        shutil.copyfile(run_dir / "checkpoints" / LATEST, kept(run_dir, ".pt"))
    partial = kept(run_dir, ".jsonl.gz.partial")  # the records mark a run kept: last, whole
    with open(run_dir / "metrics.jsonl", "rb") as source, gzip.open(partial, "wb") as target:
        shutil.copyfileobj(source, target)
    partial.rename(kept(run_dir))


def unpack(run_dir: Path, env_steps: int | None = None) -> None:
    """Write the kept run's records (its :func:`agent.report.summary.history`; up to
    ``env_steps``) as ``run_dir``/metrics.jsonl, with the spec it was made with."""
    with gzip.open(kept(run_dir), "rt") as source:
        records = history(source)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps(r) + "\n" for r in records
        if env_steps is None or r.get("env_steps", 0) <= env_steps))
    if kept(run_dir, SPEC).exists():
        shutil.copyfile(kept(run_dir, SPEC), run_dir / "spec.yaml")


def train_kept(spec: str, run_dir: Path, overrides: list[str], minutes: float | None = None,
               *, env_steps: int | None = None, checkpoint: bool = False) -> bool:
    """:func:`train` for a benchmark that spans sessions: a kept run is unpacked (up to
    ``env_steps``) rather than trained again, and a run that finishes here is kept (with
    its checkpoint if ``checkpoint``). Returns whether the run is finished."""
    if kept(run_dir).exists():
        unpack(run_dir, env_steps)
        return True
    train(spec, run_dir, overrides, minutes)
    if finished(run_dir):
        keep(run_dir, checkpoint)
        return True
    return False


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run that reached its budget (an ``end`` record that
    was not a stop)."""
    ends = [r for r in read_records(run_dir / "metrics.jsonl") if r.get("event") == "end"]
    return bool(ends) and not ends[-1]["stopped"]


def plot_per_task(
    tasks: list[str], draw, png: Path, xlabel: str, ylabel: str = "success rate"
) -> None:
    """One success panel per task; ``draw(ax, task)`` plots the labelled curves of a panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        draw(ax, task)
        ax.set_title(task)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    for ax in axes[0]:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def task_rows(run_dir: Path) -> list[dict]:
    """One row per task of a run: env steps and minutes to 0.5 and 0.9 (first sustained),
    final success, mean success over the run's evaluations (the area under the curve) and
    the task's share of the collected episodes."""
    records = read_records(run_dir / "metrics.jsonl")
    rows = []
    for task in summarize_tasks(records):
        row: dict = {"task": task.task}
        for threshold in THRESHOLDS:
            hit = task.reached[threshold]
            row[f"env_steps_to_{threshold}"] = hit["env_steps"] if hit else None
            row[f"minutes_to_{threshold}"] = round(hit["wall_time_s"] / 60, 1) if hit else None
        success = [r["success_rate"] for r in records
                   if r.get("event") == "eval" and r["task"] == task.task]
        row["final_success"] = task.final_success
        row["mean_success"] = round(sum(success) / len(success), 3)
        row["collect_share"] = round(task.collect_share, 3)
        rows.append(row)
    return rows


def summarize(run_dir: Path, threshold: float) -> dict[str, dict]:
    """Per task: env steps and seconds to ``threshold`` (first sustained, as everywhere:
    :func:`agent.report.summary.first_sustained`), final and best success."""
    out = {}
    for task in summarize_tasks(read_records(run_dir / "metrics.jsonl"), (threshold,)):
        hit = task.reached[threshold]
        out[task.task] = {
            "env_steps_to_threshold": hit["env_steps"] if hit else None,
            "wall_s_to_threshold": hit["wall_time_s"] if hit else None,
            "final_env_steps": task.final_env_steps,
            "final_success": task.final_success,
            "best_success": task.best_success,
        }
    return out


def task_recipe(spec: Spec, task: str) -> list[str]:
    """Overrides that give a run of ``task`` alone the per-task collection and replay
    settings it has in ``spec`` (none where ``spec`` does not train it)."""
    if task not in spec.tasks:
        return []
    grasped = spec.collect.grasped_start_share
    return [f"replay.moved_goal_share={spec.replay.moved_goal_share_of(task)}",
            f"collect.grasped_start_share={{{task}: {grasped[task]}}}" if task in grasped
            else "collect.grasped_start_share={}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        print(json.dumps({"run": str(run_dir), **summarize(run_dir, args.threshold)}))


if __name__ == "__main__":
    main()
