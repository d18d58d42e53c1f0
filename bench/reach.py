"""FetchReach: env steps and wall-clock to 0.95 success, through main.py, several seeds.

    python bench/reach.py [--seeds 1 2 3] [--budget 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.summarize import summarize

OUT = Path("bench/out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budget", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    for seed in args.seeds:
        run_dir = OUT / f"reach_s{seed}"
        subprocess.run(
            [sys.executable, "main.py", "--spec", "specs/fetch_reach.yaml", "--run-dir",
             str(run_dir), "--set", f"seed={seed}", "--set", f"budget.env_steps={args.budget}",
             "--set", "eval.every_env_steps=500", "--set", "eval.episodes=20",
             "--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"],
            check=True, capture_output=True,
        )
        print(json.dumps({"seed": seed, **summarize(run_dir, args.threshold)["FetchReach-v4"]}))


if __name__ == "__main__":
    main()
