"""A multi-task spec (default specs/fetch_mt.yaml) against each of its tasks trained alone
with the same per-task budget.

Runs the multi-task spec with ``--budget`` total env steps (default: the spec's), then each
task alone with ``budget / number of tasks`` and otherwise the same spec, and prints per-task
steps-to-threshold and final success. Curves: each run directory's success.png and a
combined bench/out/multitask.png (another ``--spec``'s files and run directories start with
its name: bench/out/fetch_panda_multitask.png).

    python -m bench.multitask [--spec S] [--budget N] [--threshold 0.5] [--alone TASK ...]
                              [--minutes M]

Runs already finished are reused; a stopped or killed one resumes from its checkpoint, so
the comparison can span several sessions (``--minutes`` ends each run cleanly).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.report.plotting import eval_curves
from bench.summarize import finished, plot_per_task, summarize, task_recipe, train
from common.spec import load_spec

OUT = Path("bench/out")
SPEC = "specs/fetch_mt.yaml"


def plot(mt_dir: Path, alone: dict[str, Path], png: Path) -> None:
    mt = eval_curves(mt_dir / "metrics.jsonl")
    n = len(alone)

    def draw(ax, task: str) -> None:
        if task in mt:
            steps, success = zip(*mt[task], strict=True)
            ax.plot([s / n for s in steps], success, label="multi-task (steps / tasks)")
        single = eval_curves(alone[task] / "metrics.jsonl").get(task)
        if single:
            steps, success = zip(*single, strict=True)
            ax.plot(steps, success, label="alone")

    plot_per_task(list(alone), draw, png, "env steps of this task")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=SPEC)
    parser.add_argument("--budget", type=int, default=None, help="default: the spec's")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--eval-every", type=int, default=None, help="default: the spec's")
    parser.add_argument("--alone", nargs="*", metavar="TASK", default=None,
                        help="train only these tasks alone, in this order (default: all)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop each run after this wall-clock; the next call resumes it")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    budget = args.budget or spec.budget.env_steps
    eval_every = args.eval_every or spec.eval.every_env_steps
    prefix = "" if args.spec == SPEC else f"{Path(args.spec).stem}_"
    tasks = spec.tasks
    per_task = budget // len(tasks)
    mt_dir = OUT / f"{prefix}mt_{budget}"
    train(args.spec, mt_dir, [f"--set=budget.env_steps={budget}",
                              f"--set=eval.every_env_steps={eval_every}"], args.minutes)
    alone = {task: OUT / f"{prefix}alone_{task}_{per_task}" for task in tasks}
    for task in tasks if args.alone is None else args.alone:
        train(args.spec, alone[task], [f"--set=tasks=[{task}]",
                                       *[f"--set={o}" for o in task_recipe(spec, task)],
                                       f"--set=budget.env_steps={per_task}",
                                       f"--set=eval.every_env_steps={eval_every // len(tasks)}"],
              args.minutes)
    mt = summarize(mt_dir, args.threshold)
    for task in tasks:
        steps = mt[task]["env_steps_to_threshold"]
        row = {"task": task,
               "multitask_task_steps_to_threshold": steps // len(tasks) if steps else None,
               "multitask_final_success": mt[task]["final_success"]}
        if finished(alone[task]):
            single = summarize(alone[task], args.threshold)[task]
            row.update(alone_steps_to_threshold=single["env_steps_to_threshold"],
                       alone_final_success=single["final_success"])
        print(json.dumps(row))
    plot(mt_dir, alone, OUT / f"{prefix}multitask.png")


if __name__ == "__main__":
    main()
