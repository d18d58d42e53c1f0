"""Summarize run directories: env steps and wall-clock to a success threshold, per task.

    python bench/summarize.py RUN_DIR [RUN_DIR ...] [--threshold 0.9]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.plotting import eval_curves


def first_crossing(run_dir: Path, task: str, threshold: float) -> dict | None:
    """The first eval line of ``task`` with success >= threshold, or None."""
    with open(run_dir / "metrics.jsonl") as lines:
        for line in lines:
            r = json.loads(line)
            if r.get("event") == "eval" and r["task"] == task and r["success_rate"] >= threshold:
                return r
    return None


def summarize(run_dir: Path, threshold: float) -> dict[str, dict]:
    """Per task: steps and seconds to ``threshold``, final and best success."""
    out = {}
    for task, points in eval_curves(run_dir / "metrics.jsonl").items():
        hit = first_crossing(run_dir, task, threshold)
        out[task] = {
            "env_steps_to_threshold": hit["env_steps"] if hit else None,
            "wall_s_to_threshold": hit["wall_time_s"] if hit else None,
            "final_env_steps": points[-1][0],
            "final_success": points[-1][1],
            "best_success": max(s for _, s in points),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    for run_dir in args.run_dirs:
        print(json.dumps({"run": str(run_dir), **summarize(run_dir, args.threshold)}))


if __name__ == "__main__":
    main()
