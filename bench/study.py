"""The multi-task strategy study: the main job's tasks and recipe, one configuration per
strategy, each with the same budget.

Trains every ``--configs`` entry for every ``--seeds`` seed through ``main.py`` (one run
after the other: each uses the whole box; a run already finished is reused, a stopped one
resumed), with per-task learning signals recorded (``metrics.signals_every_updates``).
Then prints and writes ``bench/out/study/study.csv``, per configuration, seed and task:
env steps and minutes to 0.5 and 0.9 (the first of two evaluations in a row at or above
it), final success and the mean success over the run's evaluations (the area under the
curve), plus the env steps until every task reached 0.5; and ``study.png``, the curves
(mean over seeds, min-max band) against env steps and wall-clock with each task's
collection share and loss weight.

    python -m bench.study [--configs uniform,learnability] [--seeds 1] [--minutes 75]
                          [--spec specs/fetch_mt.yaml] [--set KEY=VALUE ...] [--reuse]

``python -m bench.signals`` reads the same runs for which signal predicts learning.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from agent.report.plotting import plot_runs
from agent.report.summary import first_sustained, read_records
from bench.summarize import train

OUT = Path("bench/out/study")
CONFIGS: dict[str, list[str]] = {
    "uniform": [],
    "learning_progress": ["scheduler.name=learning_progress"],
    "curious": ["scheduler.name=learning_progress", "scheduler.epsilon=0.4",
                "scheduler.noise_floor_z=0"],
    "learnability": ["scheduler.name=learnability"],
    "curriculum": ["scheduler.name=curriculum"],
    "sequential": ["scheduler.name=sequential"],
    "lp_weighting": ["weighting.name=learning_progress"],
    "famo": ["weighting.name=famo"],
    "pcgrad": ["weighting.name=pcgrad"],
    "reptile": ["meta.update=reptile"],
}
"""Each configuration's overrides of the spec."""
SIGNALS_EVERY_UPDATES = 100


def run_dir(config: str, seed: int) -> Path:
    return OUT / f"{config}_s{seed}"


def task_rows(directory: Path) -> dict[str, list[dict]]:
    """Each task's eval records, in order."""
    rows: dict[str, list[dict]] = {}
    for record in read_records(directory / "metrics.jsonl"):
        if record.get("event") == "eval":
            rows.setdefault(record["task"], []).append(record)
    return rows


def summary(config: str, seed: int) -> list[dict]:
    """One row per task of the run: thresholds, final success and mean success."""
    rows = task_rows(run_dir(config, seed))
    out = []
    for task, evals in rows.items():
        row: dict = {"config": config, "seed": seed, "task": task}
        for threshold in (0.5, 0.9):
            hit = first_sustained(evals, threshold)
            row[f"env_steps_to_{threshold}"] = hit["env_steps"] if hit else None
            row[f"minutes_to_{threshold}"] = round(hit["wall_time_s"] / 60, 1) if hit else None
        row["final_success"] = evals[-1]["success_rate"]
        row["mean_success"] = round(sum(e["success_rate"] for e in evals) / len(evals), 3)
        row["final_env_steps"] = evals[-1]["env_steps"]
        out.append(row)
    reached = [r["env_steps_to_0.5"] for r in out]
    every = max(reached) if reached and None not in reached else None
    for row in out:
        row["env_steps_all_to_0.5"] = every
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="specs/fetch_mt.yaml")
    parser.add_argument("--configs", default="uniform", help=f"from {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--minutes", type=float, default=75.0,
                        help="wall-clock budget of every run (a SIGINT stop, resumable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="spec override for every run")
    parser.add_argument("--reuse", action="store_true", help="summarize runs already made")
    args = parser.parse_args()
    configs = args.configs.split(",")
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"--configs: unknown {unknown}; expected names from {list(CONFIGS)}")
    rows = []
    for config in configs:
        for seed in args.seeds:
            if not args.reuse:
                overrides = [f"seed={seed}",
                             f"metrics.signals_every_updates={SIGNALS_EVERY_UPDATES}",
                             *CONFIGS[config], *args.overrides]
                train(args.spec, run_dir(config, seed), [f"--set={o}" for o in overrides],
                      args.minutes)
                print(f"{config} seed {seed}: done", file=sys.stderr)
            for row in summary(config, seed):
                print(json.dumps(row), flush=True)
                rows.append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "study.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_runs({config: [run_dir(config, seed) for seed in args.seeds] for config in configs},
              OUT / "study.png", rows=("env_steps", "wall_clock", "collect_share", "weight"))
    print(f"table: {OUT / 'study.csv'}, curves: {OUT / 'study.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
