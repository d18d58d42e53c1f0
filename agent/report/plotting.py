"""Per-task success-rate curve (PNG) from the eval lines of metrics.jsonl."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from agent.report.summary import read_records


def eval_curves(metrics_path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{task: [(env_steps, success_rate), ...]}`` in file order."""
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in read_records(metrics_path):
        if record.get("event") == "eval":
            curves[record["task"]].append((record["env_steps"], record["success_rate"]))
    return dict(curves)


def _label_steps(ax: Any) -> None:
    """Env-step ticks as 250k, 1.5M: full numbers run into each other."""
    from matplotlib.ticker import FuncFormatter

    def short(value: float, _: int) -> str:
        for scale, suffix in ((1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:g}{suffix}"
        return f"{value:g}"

    ax.xaxis.set_major_formatter(FuncFormatter(short))


def plot_success(metrics_path: Path, png_path: Path) -> None:
    """Write success rate against env steps, one line per task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves = eval_curves(metrics_path)
    for task, points in sorted(curves.items()):
        steps, success = zip(*points, strict=True)
        ax.plot(steps, success, marker="o", markersize=3, label=task)
    ax.set_xlabel("env steps (all tasks)")
    _label_steps(ax)
    ax.set_ylabel("success rate (deterministic eval)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no evaluation yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


PANELS = {
    "env_steps": ("env steps (all tasks)", "success_rate"),
    "wall_clock": ("wall-clock (minutes)", "success_rate"),
    "collect_share": ("env steps (all tasks)", "collect_share"),
    "weight": ("env steps (all tasks)", "weight"),
}
"""Rows of a comparison figure: x axis label and the eval field drawn."""


def group_by_spec(run_dirs: list[Path]) -> dict[str, list[Path]]:
    """Runs whose resolved specs differ only in ``seed`` form one group (drawn as a mean
    with a band), labelled by the first run's directory name."""
    import yaml

    groups: dict[str, list[Path]] = {}
    for run_dir in run_dirs:
        spec = yaml.safe_load((run_dir / "spec.yaml").read_text())
        spec.pop("seed", None)
        groups.setdefault(json.dumps(spec, sort_keys=True), []).append(run_dir)
    return {(dirs[0].name if len(dirs) == 1 else f"{dirs[0].name} ({len(dirs)} seeds)"): dirs
            for dirs in groups.values()}


def plot_runs(groups: dict[str, list[Path]], png: Path,
              rows: tuple[str, ...] = tuple(PANELS)) -> None:
    """Per-task panels (columns) of ``rows`` (see :data:`PANELS`) for labelled groups of
    runs: one line per group, the mean over its runs with a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    evals = {label: [_task_evals(d) for d in dirs] for label, dirs in groups.items()}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {label: cycle[i % len(cycle)] for i, label in enumerate(groups)}
    handles = dict.fromkeys(groups)
    tasks = sorted({task for runs in evals.values() for run in runs for task in run})
    fig, axes = plt.subplots(len(rows), max(len(tasks), 1), squeeze=False,
                             figsize=(4.5 * max(len(tasks), 1), 3.2 * len(rows)))
    for column, task in enumerate(tasks):
        axes[0][column].set_title(task)
        for label, runs in evals.items():
            series = [run[task] for run in runs if task in run]
            if not series:
                continue
            length = min(len(s) for s in series)
            for row, panel in enumerate(rows):
                x_label, field = PANELS[panel]
                x_key = "wall_time_s" if panel == "wall_clock" else "env_steps"
                scale = 1 / 60 if panel == "wall_clock" else 1
                x = np.mean([[r[x_key] * scale for r in s[:length]] for s in series], axis=0)
                y = np.array([[r.get(field, np.nan) for r in s[:length]] for s in series])
                ax = axes[row][column]
                handles[label], = ax.plot(x, y.mean(axis=0), color=color[label], label=label)
                if len(series) > 1:
                    ax.fill_between(x, y.min(axis=0), y.max(axis=0), alpha=0.2,
                                    color=color[label])
                ax.set_xlabel(x_label)
                if x_key == "env_steps":
                    _label_steps(ax)
                ax.set_ylabel(field)
                ax.set_ylim(-0.02, 1.02)
                ax.grid(alpha=0.3)
    drawn = [handle for handle in handles.values() if handle is not None]
    columns = max(min(len(drawn), 4, 2 * max(len(tasks), 1)), 1)  # two per panel's width
    legend_rows = -(-len(drawn) // columns)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 * legend_rows / fig.get_figheight()))
    fig.legend(handles=drawn, loc="upper center", ncols=columns, fontsize="small")
    fig.savefig(png, dpi=90)
    plt.close(fig)


def _task_evals(run_dir: Path) -> dict[str, list[dict]]:
    by_task: dict[str, list[dict]] = defaultdict(list)
    for record in read_records(run_dir / "metrics.jsonl"):
        if record.get("event") == "eval":
            by_task[record["task"]].append(record)
    return dict(by_task)
