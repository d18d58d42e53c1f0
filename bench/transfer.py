"""Forward transfer: env steps to a success threshold on a target task, from scratch against
starting from a source task's checkpoint (fine-tuning all weights, or adapters only).

Trains the source task once per seed, then per seed: the target from scratch, fine-tuned
(``transfer.lr_multiplier``), and with ``model.arch=lora`` adapters only
(``model.freeze=shared``; the source is trained with ``lora`` too, so the adapters have a
backbone to sit on). Prints steps-to-threshold per variant and seed.

    python bench/transfer.py [--source FetchPush-v4] [--target FetchPickAndPlace-v4]
        [--source-budget 1000000] [--budget 1000000] [--seeds 3] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.summarize import summarize, train

OUT = Path("bench/out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="specs/fetch_push.yaml")
    parser.add_argument("--source", default="FetchPush-v4")
    parser.add_argument("--target", default="FetchPickAndPlace-v4")
    parser.add_argument("--source-budget", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, default=1_000_000)
    parser.add_argument("--eval-every", type=int, default=25_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--lr-multiplier", type=float, default=0.5)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--name", default="transfer")
    args = parser.parse_args()
    extra = [f"--set={o}" for o in args.overrides]
    target = [f"--set=tasks=[{args.target}]", f"--set=budget.env_steps={args.budget}",
              f"--set=eval.every_env_steps={args.eval_every}", *extra]
    variants = {
        "scratch": ([], None),
        "finetune": ([f"--set=transfer.lr_multiplier={args.lr_multiplier}"], "onehot"),
        "adapters": (["--set=model.arch=lora", "--set=model.freeze=shared"], "lora"),
    }
    results: dict[str, list] = {name: [] for name in variants}
    for seed in range(args.seeds):
        sources = {}
        for arch in ("onehot", "lora"):
            sources[arch] = OUT / f"{args.name}_source_{arch}_s{seed}"
            train(args.spec, sources[arch], [
                f"--set=tasks=[{args.source}]", f"--set=budget.env_steps={args.source_budget}",
                f"--set=eval.every_env_steps={args.eval_every}", f"--set=model.arch={arch}",
                f"--set=seed={seed}", *extra])
        for name, (overrides, arch) in variants.items():
            run_dir = OUT / f"{args.name}_{name}_s{seed}"
            start = ([f"--set=transfer.from_checkpoint={sources[arch]}/checkpoints/latest.pt"]
                     if arch else [])
            train(args.spec, run_dir, [*target, *overrides, *start, f"--set=seed={seed}"])
            results[name].append(
                summarize(run_dir, args.threshold)[args.target]["env_steps_to_threshold"])
    print(json.dumps({"source": args.source, "target": args.target,
                      "threshold": args.threshold, "env_steps_to_threshold": results}))


if __name__ == "__main__":
    main()
