"""Per-task success-rate curve (PNG) from the eval lines of metrics.jsonl."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from agent.summary import read_records


def eval_curves(metrics_path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{task: [(env_steps, success_rate), ...]}`` in file order."""
    curves: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in read_records(metrics_path):
        if record.get("event") == "eval":
            curves[record["task"]].append((record["env_steps"], record["success_rate"]))
    return dict(curves)


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
