"""Task schedulers on Fetch: env steps until each learnable task reaches a threshold.

Runs every ``--schedulers`` entry for ``--seeds`` seeds on the same tasks (default: Push,
PickAndPlace and Slide as the distractor that cannot progress within the budget) and prints
per scheduler and task the total env steps to ``--threshold`` (None: not reached) and the
final success; curves (mean over seeds) go to bench/out/schedulers.png.

    python -m bench.schedulers [--tasks FetchPush-v4,FetchPickAndPlace-v4,FetchSlide-v4]
        [--budget 1500000] [--seeds 3] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.report.plotting import plot_runs
from bench.summarize import summarize, train

OUT = Path("bench/out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="specs/fetch_mt.yaml")
    parser.add_argument("--tasks", default="FetchPush-v4,FetchPickAndPlace-v4,FetchSlide-v4")
    parser.add_argument("--schedulers", default="uniform,learning_progress")
    parser.add_argument("--budget", type=int, default=1_500_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--name", default="schedulers", help="output names under bench/out")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    common = [f"--set=tasks=[{', '.join(tasks)}]", f"--set=budget.env_steps={args.budget}",
              f"--set=eval.every_env_steps={args.eval_every}",
              *(f"--set={o}" for o in args.overrides)]
    runs: dict[str, list[Path]] = {}
    for name in args.schedulers.split(","):
        for seed in range(args.seeds):
            run_dir = OUT / f"{args.name}_{name}_s{seed}"
            train(args.spec, run_dir, [*common, f"--set=scheduler.name={name}",
                                       f"--set=seed={seed}"])
            runs.setdefault(name, []).append(run_dir)
    for name, dirs in runs.items():
        for task in tasks:
            rows = [summarize(d, args.threshold)[task] for d in dirs]
            print(json.dumps({
                "scheduler": name, "task": task,
                "env_steps_to_threshold": [r["env_steps_to_threshold"] for r in rows],
                "final_success": [r["final_success"] for r in rows],
            }))
    plot_runs(runs, OUT / f"{args.name}.png", rows=("env_steps", "collect_share", "weight"))


if __name__ == "__main__":
    main()
