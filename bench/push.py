"""FetchPush end to end: specs/fetch_push.yaml as a user runs it, curve, CSV, time to 0.5 / 0.9.

Trains each seed through ``main.py`` (one after the other: each run uses the whole box),
then writes ``bench/out/push/push.csv`` (one row per evaluation: seed, env steps,
wall-clock, updates, gradient samples, success), ``bench/out/push/push.png`` (success
against env steps and against wall-clock) and prints, per seed, the env steps and
wall-clock at which success first reached 0.5 and 0.9 on two evaluations in a row.

    python -m bench.push [--spec S] [--seeds 1 2] [--minutes 45] [--set KEY=VALUE ...]

``--minutes`` stops a seed at that wall-clock (SIGINT: a clean, checkpointed stop, without
a final evaluation); ``--set`` passes overrides to every run, ``--name`` keeps candidates apart.
``--spec`` benchmarks another one-task spec the same way (``--spec specs/panda_push.yaml
--name panda`` for PandaPush).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from agent.report.plotting import plot_runs
from agent.report.summary import first_sustained
from bench.distributed import records
from bench.summarize import train
from common.spec import SpecError, load_spec

SPEC = "specs/fetch_push.yaml"
OUT = Path("bench/out/push")


def curve(run_dir: Path) -> list[dict]:
    """Evaluation rows of the run's (one) task with the evaluated weights' updates (gradient
    samples: updates times the spec's batch size, one learner rank)."""
    spec = load_spec(run_dir / "spec.yaml")
    batch_size, task = spec.learner.batch_size, spec.tasks[0]
    return [{"env_steps": r["env_steps"], "wall_time_s": round(r["wall_time_s"], 1),
             "updates": r["updates"], "gradient_samples": r["updates"] * batch_size,
             "success_rate": r["success_rate"]}
            for r in records(run_dir) if r["event"] == "eval" and r["task"] == task]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=SPEC,
                        help="a one-task spec (default: %(default)s; specs/panda_push.yaml "
                             "for PandaPush)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock limit per seed (default: the spec's budget)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE")
    parser.add_argument("--name", default=None,
                        help="output name under bench/out/push/ (default: push for the "
                             "shipped spec, the spec file's name otherwise)")
    parser.add_argument("--reuse", action="store_true",
                        help="summarize seeds already trained instead of training again")
    args = parser.parse_args()
    try:
        tasks = load_spec(args.spec, args.overrides).tasks
    except SpecError as exc:
        parser.error(str(exc))
    if len(tasks) != 1:
        parser.error(f"--spec {args.spec}: a benchmark of one task needs a spec with one task")
    if args.name is None:
        args.name = "push" if args.spec == SPEC else Path(args.spec).stem
    OUT.mkdir(parents=True, exist_ok=True)
    curves = {}
    for seed in args.seeds:
        run_dir = OUT / f"{args.name}_s{seed}"
        if not args.reuse:
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
            started = time.monotonic()
            train(args.spec, run_dir, [f"--set={o}" for o in [f"seed={seed}", *args.overrides]],
                  args.minutes)
            print(f"seed {seed}: trained in {time.monotonic() - started:.0f} s", file=sys.stderr)
        curves[seed] = rows = curve(run_dir)
        summary = {"name": args.name, "seed": seed}
        for threshold in (0.5, 0.9):
            hit = first_sustained(rows, threshold)
            summary[f"env_steps_to_{threshold}"] = hit["env_steps"] if hit else None
            summary[f"minutes_to_{threshold}"] = round(hit["wall_time_s"] / 60, 1) if hit else None
        last = rows[-1] if rows else {}
        summary.update(final_env_steps=last.get("env_steps"),
                       final_minutes=round(last.get("wall_time_s", 0) / 60, 1),
                       final_success=last.get("success_rate"),
                       best_success=max((r["success_rate"] for r in rows), default=None),
                       updates_x_batch=last.get("gradient_samples"))
        print(json.dumps(summary), flush=True)
    with open(OUT / f"{args.name}.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["seed", "env_steps", "wall_time_s", "updates", "gradient_samples",
                         "success_rate"])
        for seed, rows in curves.items():
            writer.writerows([seed, *r.values()] for r in rows)
    plot_runs({f"seed {seed}": [OUT / f"{args.name}_s{seed}"] for seed in args.seeds},
              OUT / f"{args.name}.png", rows=("env_steps", "wall_clock"))
    print(f"curve: {OUT / args.name}.png, table: {OUT / args.name}.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
