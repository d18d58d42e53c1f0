"""A checkpoint's success on one task, split by where the goal is: on the table or in the air.

FetchPickAndPlace puts about half of its goals above the table; a policy that only pushes
solves the others. The split shows what a run has learned of the lift (docs/multitask.md,
section 5). The episodes are those that ``main.py eval --episodes N --seed S`` scores for
the task (noise-free, the same reset seeds).

    python -m bench.goal_heights RUN/checkpoints/latest.pt [--task FetchPickAndPlace-v4]
        [--episodes 100] [--seed 1000] [--air-above 0.43]
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing
from pathlib import Path

import numpy as np

from agent.report.evaluate import evaluation_batches, load_policy

TABLE_TOP_Z = 0.43
"""Goals higher than this (m) are in the air: the object rests at z = 0.425 on the table."""


def split_by_height(goal_z: np.ndarray, success: np.ndarray,
                    air_above: float = TABLE_TOP_Z) -> dict[str, dict[str, float]]:
    """Episodes and success rate for all goals, those on the table and those in the air
    (``goal_z`` and ``success`` per episode); a group without episodes has rate ``nan``."""
    groups = {"all": np.ones_like(success, bool), "table": goal_z <= air_above,
              "air": goal_z > air_above}
    return {name: {"episodes": int(mask.sum()),
                   "success": float(success[mask].mean()) if mask.any() else float("nan")}
            for name, mask in groups.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--task", default="FetchPickAndPlace-v4")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--air-above", type=float, default=TABLE_TOP_Z)
    args = parser.parse_args()
    spec, policy = load_policy(args.checkpoint)
    if args.task not in spec.tasks:
        parser.error(f"--task {args.task}: not a task of {args.checkpoint} "
                     f"({', '.join(spec.tasks)})")
    with closing(evaluation_batches(spec, policy, args.episodes, args.seed)) as batches:
        batch = next(b for b in batches if b.task == args.task)
    print(json.dumps({"checkpoint": str(args.checkpoint), "task": args.task,
                      **split_by_height(batch.desired_goal[:, 0, 2], batch.success,
                                        args.air_above)}))


if __name__ == "__main__":
    main()
