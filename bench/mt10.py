"""Meta-World MT10 end to end: specs/mt10.yaml as a user runs it, per-task and MT10-mean
success against env steps per task, next to the published MT-SAC figure.

    python -m bench.mt10 [--minutes 120] [--set KEY=VALUE ...] [--reuse]

Trains ``bench/out/mt10/run`` (a stopped or killed run resumes from its checkpoint, so the
benchmark can span sessions; ``--minutes`` ends this call's training cleanly), then writes
``bench/out/mt10/mt10.csv`` (env steps in all and per task, each task's success and the
MT10 mean), ``bench/out/mt10/mt10.png`` and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from agent.report.plotting import eval_curves
from agent.report.summary import read_records
from bench.summarize import train

OUT = Path("bench/out/mt10")
SPEC = "specs/mt10.yaml"
PUBLISHED: list[tuple[str, int, float]] = [
    ("MT-SAC, CARE Table 1 (v1 envs, 10 seeds)", 2_000_000, 0.49),
    ("MT-SAC, CARE at 100k (second-hand)", 100_000, 0.13),
    ("MT-SAC, CARE at 500k (second-hand)", 500_000, 0.38),
]
"""(source, env steps per task, MT10 mean success) of published MT-SAC results: CARE
(Sodhani et al. 2021) as reprinted in CAGrad's Table 3 and Nash-MTL's Table 4 (2M steps per
task); its 100k and 500k columns only as a third-party review transcribes them."""


def mean_curve(run_dir: Path) -> list[tuple[int, float]]:
    """(env steps, MT10 mean success) of each evaluation."""
    return [(r["env_steps"], r["success_rate"]) for r in read_records(run_dir / "metrics.jsonl")
            if r.get("event") == "eval_mean"]


def plot(curves: dict[str, list[tuple[int, float]]], mean: list[tuple[int, float]],
         png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    fig, ax = plt.subplots(figsize=(10, 5))
    for task, points in curves.items():
        ax.plot([s / n for s, _ in points], [v for _, v in points], lw=1, alpha=0.6,
                label=task)
    ax.plot([s / n for s, _ in mean], [v for _, v in mean], "k", lw=2.5, label="MT10 mean")
    for source, steps, success in PUBLISHED:
        ax.plot([steps], [success], "r*", ms=12)
        ax.annotate(source, (steps, success), fontsize="small", xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("env steps per task (log)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop training after this wall-clock; the next call resumes it")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.add_argument("--reuse", action="store_true",
                        help="summarize the run as it is instead of training further")
    args = parser.parse_args()
    run_dir = OUT / "run"
    if not args.reuse:
        train(SPEC, run_dir, [f"--set={o}" for o in args.overrides], args.minutes)
    curves = eval_curves(run_dir / "metrics.jsonl")
    mean = dict(mean_curve(run_dir))
    tasks = list(curves)
    with open(OUT / "mt10.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["env_steps", "env_steps_per_task", *tasks, "mt10_mean"])
        for i, (steps, _) in enumerate(curves[tasks[0]]):
            row = [curves[t][i][1] for t in tasks]
            writer.writerow([steps, steps // len(tasks), *row,
                             round(mean[steps], 4) if steps in mean else ""])
    plot(curves, sorted(mean.items()), OUT / "mt10.png")
    print((OUT / "mt10.csv").read_text(), end="")
    print(f"curve: {OUT / 'mt10.png'}, table: {OUT / 'mt10.csv'}", file=sys.stderr)


if __name__ == "__main__":
    main()
