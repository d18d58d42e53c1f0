"""Forward transfer: does a learned source task make a target task learn faster?

Per seed, the source task is trained once per architecture it is reused with (``onehot``
for fine-tuning, ``lora`` for adapters), then the target task four ways:

- ``scratch``: no source;
- ``finetune``: every weight from the source's checkpoint, at the learner's learning rates;
- ``finetune_half_lr``: the same at half of them (``transfer.lr_multiplier=0.5``);
- ``adapters``: the ``lora`` source's backbone frozen (``model.freeze=shared``), only the
  target's adapters and heads trained.

The target trains with the main job's own settings for it (``--recipe``, default
specs/fetch_mt.yaml): its moved-goal share and, for PickAndPlace, its grasped-start share
(without that aid PickAndPlace stalls at 0.45 in the main job: docs/benchmarks.md).

Prints and writes ``bench/out/transfer/<name>.csv``, per variant and seed: the target's env
steps and minutes to 0.5 and 0.9, final and mean success; and ``<name>.png``, the curves.
Finished runs are kept in ``bench/results/transfer/`` with their final checkpoints (the
sources' start the targets; ``bench.goal_heights`` reads the targets') and not trained
again, so the benchmark spans sessions.

    python -m bench.transfer [--spec specs/fetch_push.yaml] [--source FetchPush-v4]
        [--target FetchPickAndPlace-v4] [--source-budget 500000] [--budget 1000000]
        [--seeds 1 2] [--minutes 45] [--name push_to_pickandplace] [--set KEY=VALUE ...]
        [--recipe specs/fetch_mt.yaml] [--variants scratch,finetune,finetune_half_lr,adapters]

``--variants`` trains only those targets (and only the sources they start from), so the
benchmark can be split over sessions; the table and curves show every target run made.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from pathlib import Path

from agent.report.plotting import plot_runs
from bench.summarize import kept, task_recipe, task_rows, train_kept, unpack
from common.spec import load_spec

OUT = Path("bench/out/transfer")
VARIANTS: dict[str, tuple[list[str], str | None]] = {
    "scratch": ([], None),
    "finetune": ([], "onehot"),
    "finetune_half_lr": (["transfer.lr_multiplier=0.5"], "onehot"),
    "adapters": (["model.arch=lora", "model.freeze=shared"], "lora"),
}
"""Each variant's overrides of the target's spec and the source architecture it starts from."""


def target_dir(name: str, variant: str, seed: int) -> Path:
    """Where one target run trains (and is unpacked from its kept records)."""
    return OUT / f"{name}_{variant}_s{seed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="specs/fetch_push.yaml")
    parser.add_argument("--source", default="FetchPush-v4")
    parser.add_argument("--target", default="FetchPickAndPlace-v4")
    parser.add_argument("--source-budget", type=int, default=500_000)
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock limit of every run (a SIGINT stop, resumable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="spec override for every run (applied last)")
    parser.add_argument("--name", default="push_to_pickandplace")
    parser.add_argument("--recipe", default="specs/fetch_mt.yaml",
                        help="spec whose per-task settings the target gets")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"targets to train, from {', '.join(VARIANTS)}")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := sorted(set(variants) - set(VARIANTS)):
        parser.error(f"--variants: unknown {', '.join(unknown)} (from {', '.join(VARIANTS)})")
    target_recipe = task_recipe(load_spec(args.recipe), args.target)

    def run(directory: Path, overrides: list[str]) -> bool:
        every = [f"eval.every_env_steps={args.eval_every}", *overrides, *args.overrides]
        done = train_kept(args.spec, directory, [f"--set={o}" for o in every], args.minutes,
                          checkpoint=True)
        print(f"{directory.name}: {'done' if done else 'stopped'}", file=sys.stderr)
        return done

    for seed in args.seeds:
        sources = {arch: OUT / f"{args.name}_source_{arch}_s{seed}"
                   for arch in dict.fromkeys(VARIANTS[v][1] for v in variants) if arch}
        ready = {arch: run(directory, [f"tasks=[{args.source}]", f"seed={seed}",
                                       f"budget.env_steps={args.source_budget}",
                                       f"model.arch={arch}"])
                 for arch, directory in sources.items()}
        for variant in variants:
            overrides, arch = VARIANTS[variant]
            if arch and not ready[arch]:
                continue  # its source was stopped: a later call resumes it first
            start = [f"transfer.from_checkpoint={kept(sources[arch], '.pt')}"] if arch else []
            run(target_dir(args.name, variant, seed),
                [f"tasks=[{args.target}]", f"seed={seed}", f"budget.env_steps={args.budget}",
                 *target_recipe, *overrides, *start])
    rows = []
    for variant, seed in itertools.product(VARIANTS, args.seeds):
        directory = target_dir(args.name, variant, seed)
        if variant not in variants and kept(directory).exists():
            unpack(directory)  # trained in an earlier session
        for row in task_rows(directory):
            rows.append({"variant": variant, "seed": seed, **row})
            print(json.dumps(rows[-1]), flush=True)
    if not rows:
        raise SystemExit("error: no target run has evaluations yet")
    with open(OUT / f"{args.name}.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_runs({variant: [target_dir(args.name, variant, seed) for seed in args.seeds]
               for variant in VARIANTS}, OUT / f"{args.name}.png",
              rows=("env_steps", "wall_clock"))
    print(f"table: {OUT / args.name}.csv, curves: {OUT / args.name}.png", file=sys.stderr)


if __name__ == "__main__":
    main()
