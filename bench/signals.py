"""Which signal shows that a task is learning: does a task's loss, TD error, gradient or Q
value (its level, or its change) predict its success gain over the next evaluation window?

Reads runs that recorded per-task signals (``metrics.signals_every_updates``; every run of
``python -m bench.study`` does). For every task and every evaluation k of a run, a signal's
*level* is its mean over the train records between evaluations k-1 and k, its *change* is
that level minus the one of the window before, and the *gain* is success(k+a) - success(k)
(``--ahead a`` windows, 1 by default; a longer gain averages out evaluation noise).
Prints the Spearman rank correlation of each signal's level and change with the gain,
pooled over every run and task, beside two success-based predictors for comparison
(learnability p(1 - p) and the last |Δ success|, what the schedulers use), and draws
``bench/out/study/signals.png`` (each signal's level and change against the gain, by task).

    python -m bench.signals [RUN_DIR ...]     # default: every run of the study, archived
                                              # (bench/results/study) or under bench/out/study
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from agent.report.summary import read_records
from bench.study import OUT as STUDY
from bench.study import study_runs

SIGNALS = ("signals/td_abs", "signals/grad_norm", "signals/grad_cos", "signals/conflict_cos",
           "losses/critic", "q/mean")


def windows(run_dir: Path, ahead: int = 1) -> list[dict]:
    """One row per task and evaluation window with one ``ahead`` windows later: each
    signal's level and change, the success-based predictors, and the gain until then."""
    records = read_records(run_dir / "metrics.jsonl")
    evals: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("event") == "eval":
            evals[record["task"]].append(record)
    train = [r for r in records if r.get("event") == "train"]
    rows = []
    for task, points in evals.items():
        levels = []  # per evaluation: each signal's mean since the previous one
        start = 0
        for point in points:
            inside = [r for r in train if start < r["env_steps"] <= point["env_steps"]]
            levels.append({name: _mean([r.get(f"{name}/{task}") for r in inside])
                           for name in SIGNALS})
            start = point["env_steps"]
        for k in range(1, len(points) - ahead):
            success = points[k]["success_rate"]
            row = {"run": run_dir.name, "task": task, "env_steps": points[k]["env_steps"],
                   "gain": points[k + ahead]["success_rate"] - success,
                   "learnability": success * (1 - success),
                   "last_progress": abs(success - points[k - 1]["success_rate"])}
            for name in SIGNALS:
                now, before = levels[k][name], levels[k - 1][name]
                row[f"{name} level"] = now
                row[f"{name} change"] = (None if now is None or before is None
                                         else now - before)
            rows.append(row)
    return rows


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def correlations(rows: list[dict]) -> list[dict]:
    """Spearman's ρ of each predictor with the next gain, pooled over ``rows``."""
    predictors = ["learnability", "last_progress",
                  *(f"{name} {kind}" for name in SIGNALS for kind in ("level", "change"))]
    out = []
    for predictor in predictors:
        pairs = [(r[predictor], r["gain"]) for r in rows if r.get(predictor) is not None]
        if len(pairs) < 3:
            out.append({"predictor": predictor, "n": len(pairs), "spearman": None, "p": None})
            continue
        x, y = np.array(pairs).T
        rho, p = spearmanr(x, y)
        out.append({"predictor": predictor, "n": len(pairs),
                    "spearman": None if np.isnan(rho) else round(float(rho), 3),
                    "p": None if np.isnan(p) else round(float(p), 4)})
    return out


def plot(rows: list[dict], png: Path) -> None:
    """Each recorded signal's level (top) and change (bottom) against the success gain ahead,
    one colour per task, with the pooled Spearman ρ in each panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ("level", "change")
    names = [n for n in SIGNALS if any(r[f"{n} level"] is not None for r in rows)]
    fig, axes = plt.subplots(len(kinds), len(names), figsize=(4 * len(names), 7),
                             squeeze=False)
    tasks = sorted({r["task"] for r in rows})
    rho = {c["predictor"]: c["spearman"] for c in correlations(rows)}
    for row, kind in enumerate(kinds):
        for ax, name in zip(axes[row], names, strict=True):
            key = f"{name} {kind}"
            for task in tasks:
                points = [(r[key], r["gain"]) for r in rows
                          if r["task"] == task and r[key] is not None]
                if points:
                    ax.scatter(*np.array(points).T, s=10, alpha=0.6, label=task)
            ax.set_xlabel(key)
            ax.set_title(f"ρ = {rho[key]}", fontsize="small")
            ax.axhline(0, color="grey", lw=0.5)
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel("success gain ahead")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="*", type=Path)
    parser.add_argument("--ahead", type=int, default=1,
                        help="evaluation windows over which the gain is measured")
    args = parser.parse_args()
    run_dirs = args.run_dirs or study_runs()
    rows = [row for d in run_dirs for row in windows(d, args.ahead)]
    if not rows:
        raise SystemExit("error: no evaluation windows in " + ", ".join(map(str, run_dirs)))
    for row in correlations(rows):
        print(json.dumps(row))
    STUDY.mkdir(parents=True, exist_ok=True)
    plot(rows, STUDY / "signals.png")
    print(json.dumps({"runs": len(run_dirs), "windows": len(rows), "ahead": args.ahead,
                      "figure": str(STUDY / "signals.png")}))


if __name__ == "__main__":
    main()
