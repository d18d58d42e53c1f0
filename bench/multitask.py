"""specs/fetch_mt.yaml against each of its tasks trained alone with the same per-task budget.

Runs the multi-task spec with ``--budget`` total env steps, then each task alone with
``budget / number of tasks``, and prints per-task steps-to-threshold and final success.
Curves: each run directory's success.png and a combined bench/out/multitask.png.

    python bench/multitask.py [--budget 300000] [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from agent.plotting import eval_curves
from agent.spec import load_spec
from bench.summarize import summarize

OUT = Path("bench/out")
QUIET = ["--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"]


def train(run_dir: Path, overrides: list[str]) -> None:
    if (run_dir / "metrics.jsonl").exists():
        return  # already measured; delete the directory to measure again
    subprocess.run(
        [sys.executable, "main.py", "--spec", "specs/fetch_mt.yaml", "--run-dir", str(run_dir),
         *QUIET, *overrides], check=True, capture_output=True,
    )


def plot(mt_dir: Path, alone: dict[str, Path], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mt = eval_curves(mt_dir / "metrics.jsonl")
    fig, axes = plt.subplots(1, len(alone), figsize=(5 * len(alone), 4), squeeze=False)
    for ax, (task, run_dir) in zip(axes[0], alone.items(), strict=True):
        n = len(alone)
        steps, success = zip(*mt[task], strict=True)
        ax.plot([s / n for s in steps], success, label="multi-task (steps / tasks)")
        steps, success = zip(*eval_curves(run_dir / "metrics.jsonl")[task], strict=True)
        ax.plot(steps, success, label="alone")
        ax.set_title(task)
        ax.set_xlabel("env steps of this task")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("success rate")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=300_000)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--eval-every", type=int, default=15_000)
    args = parser.parse_args()
    tasks = load_spec("specs/fetch_mt.yaml").tasks
    per_task = args.budget // len(tasks)
    mt_dir = OUT / f"mt_{args.budget}"
    train(mt_dir, [f"--set=budget.env_steps={args.budget}",
                   f"--set=eval.every_env_steps={args.eval_every}"])
    alone = {}
    for task in tasks:
        alone[task] = OUT / f"alone_{task}_{per_task}"
        train(alone[task], [f"--set=tasks=[{task}]", "--set=observers=1",
                            f"--set=budget.env_steps={per_task}",
                            f"--set=eval.every_env_steps={args.eval_every // len(tasks)}"])
    mt = summarize(mt_dir, args.threshold)
    for task in tasks:
        single = summarize(alone[task], args.threshold)[task]
        steps = mt[task]["env_steps_to_threshold"]
        print(json.dumps({
            "task": task,
            "multitask_task_steps_to_threshold": steps // len(tasks) if steps else None,
            "multitask_final_success": mt[task]["final_success"],
            "alone_steps_to_threshold": single["env_steps_to_threshold"],
            "alone_final_success": single["final_success"],
        }))
    plot(mt_dir, alone, OUT / "multitask.png")


if __name__ == "__main__":
    main()
