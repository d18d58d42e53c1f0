"""The multi-task strategy study: the main job's tasks and recipe, one configuration per
strategy, each with the same budget.

Trains every ``--configs`` entry for every ``--seeds`` seed through ``main.py`` (one run
after the other: each uses the whole box; a run already finished is reused, a stopped one
resumed), with per-task learning signals recorded (``metrics.signals_every_updates``).
Then prints and writes ``bench/out/study/study.csv``, per configuration, seed and task:
env steps and minutes to 0.5 and 0.9 (the first of two evaluations in a row at or above
it), final success, the mean success over the run's evaluations (the area under the curve)
and the task's share of the collected episodes, plus the env steps until every task
reached 0.5; ``study.md``, the same per configuration and task over seeds (each seed's env
steps, the mean and range of success and share: the table docs/multitask.md shows); and
``study.png``, the curves (mean over seeds, min-max band) against env steps and wall-clock
with each task's collection share and loss weight.

Every run gets the same budget, :data:`ENV_STEPS` (about 64 minutes here). A finished run's
records are kept, gzipped, with its resolved spec in ``bench/results/study/`` (committed:
the study spans sessions whose machines are gone) and a run kept there is not trained
again; its spec and its records up to the
study's budget are unpacked into ``bench/out/study/<run>/metrics.jsonl`` for the summaries,
so a longer run (the main job's own budget) is read as if it had stopped there.

    python -m bench.study [--configs uniform,learnability] [--seeds 1] [--minutes 75]
                          [--spec specs/fetch_mt.yaml] [--distractor PandaStack-v3]
                          [--set KEY=VALUE ...] [--reuse]

``--distractor TASK`` adds a task the budget cannot learn to the spec's tasks (runs named
``<config>+<task>_s<seed>``): does a scheduler stop feeding a task that does not progress?

``python -m bench.signals`` reads the same runs for which signal predicts learning.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from agent.report.plotting import plot_runs
from bench.summarize import kept_runs, task_rows, train_kept, unpack
from common.spec import load_spec

OUT = Path("bench/out/study")
ENV_STEPS = 2_550_000
"""Every configuration's budget: 850k env steps per task, about 64 minutes on the 2-core box."""
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
    "no_grasped_start": ["collect.grasped_start_share={}"],
}
"""Each configuration's overrides of the spec."""
SIGNALS_EVERY_UPDATES = 100


def run_dir(config: str, seed: int, distractor: str | None = None) -> Path:
    return OUT / f"{config}{'+' + distractor if distractor else ''}_s{seed}"


def study_runs() -> list[Path]:
    """Every kept run unpacked (up to the study's budget), beside the runs under
    :data:`OUT` not yet kept."""
    for directory in kept_runs(OUT):
        unpack(directory, ENV_STEPS)
    return sorted(d.parent for d in OUT.glob("*_s*/metrics.jsonl"))


def summary(config: str, seed: int, distractor: str | None = None) -> list[dict]:
    """One row per task of the run (:func:`bench.summarize.task_rows`), with the env steps
    until every task but the distractor reached 0.5."""
    name = config + (f"+{distractor}" if distractor else "")
    out = [{"config": name, "seed": seed, **row}
           for row in task_rows(run_dir(config, seed, distractor))]
    reached = [r["env_steps_to_0.5"] for r in out if r["task"] != distractor]
    every = max(reached) if reached and None not in reached else None
    for row in out:
        row["env_steps_all_to_0.5"] = every
    return out


def _steps(values: list[int | None]) -> str:
    return " / ".join("—" if v is None else f"{v / 1e6:.2f}M" for v in values)


def _spread(values: list[float]) -> str:
    mean = f"{sum(values) / len(values):.2f}"
    return mean if len(values) == 1 else f"{mean} ({min(values):.2f}–{max(values):.2f})"


def table(rows: list[dict]) -> str:
    """The study's markdown table: per configuration and task, each seed's env steps to 0.5
    and 0.9 (— where never reached) and until every task reached 0.5, and the mean (min–max
    over seeds) of final and mean success and of the task's share of collected episodes."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["config"], row["task"]), []).append(row)
    lines = ["| configuration | task | seeds | env steps to 0.5 | to 0.9 | every task to 0.5 "
             "| final success | mean success | collect share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (config, task), runs in groups.items():
        lines.append(
            f"| {config} | {task} | {', '.join(str(r['seed']) for r in runs)} "
            f"| {_steps([r['env_steps_to_0.5'] for r in runs])} "
            f"| {_steps([r['env_steps_to_0.9'] for r in runs])} "
            f"| {_steps([r['env_steps_all_to_0.5'] for r in runs])} "
            f"| {_spread([r['final_success'] for r in runs])} "
            f"| {_spread([r['mean_success'] for r in runs])} "
            f"| {_spread([r['collect_share'] for r in runs])} |")
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--distractor", default=None,
                        help="a task the budget cannot learn, added to the spec's tasks")
    parser.add_argument("--reuse", action="store_true",
                        help="summarize the runs made (and kept) without training")
    args = parser.parse_args()
    configs = args.configs.split(",")
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"--configs: unknown {unknown}; expected names from {list(CONFIGS)}")
    extra = []
    if args.distractor:
        tasks = load_spec(args.spec, args.overrides).tasks
        extra = [f"tasks=[{', '.join([*tasks, args.distractor])}]"]
    study_runs()
    rows = []
    for config in configs:
        for seed in args.seeds:
            directory = run_dir(config, seed, args.distractor)
            if not args.reuse:
                overrides = [f"seed={seed}", f"budget.env_steps={ENV_STEPS}",
                             f"metrics.signals_every_updates={SIGNALS_EVERY_UPDATES}",
                             *CONFIGS[config], *args.overrides, *extra]
                done = train_kept(args.spec, directory, [f"--set={o}" for o in overrides],
                                  args.minutes, env_steps=ENV_STEPS)
                print(f"{directory.name}: {'done' if done else 'stopped'}", file=sys.stderr)
            for row in summary(config, seed, args.distractor):
                print(json.dumps(row), flush=True)
                rows.append(row)
    if not rows:
        raise SystemExit(f"error: no evaluations yet in the runs of {configs}, seeds "
                         f"{args.seeds} under {OUT}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "study.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (OUT / "study.md").write_text(table(rows))
    plot_runs({config: [run_dir(config, seed, args.distractor) for seed in args.seeds]
               for config in configs},
              OUT / "study.png", rows=("env_steps", "wall_clock", "collect_share", "weight"))
    print(f"tables: {OUT / 'study.csv'}, {OUT / 'study.md'}; curves: {OUT / 'study.png'}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
