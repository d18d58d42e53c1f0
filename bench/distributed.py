"""Distributed figures: collection scaling, policy lag, bytes per episode, recovery, kill -9 loss.

    python -m bench.distributed [scaling|bytes|recovery|killloss|all]

Every measurement runs main.py as a user would (specs/fetch_reach.yaml, Push for bytes) and
reads metrics.jsonl; results are printed as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from agent.checkpoint import LATEST, load_checkpoint
from agent.report.summary import read_records

OUT = Path("bench/out/distributed")
QUIET = ["--set", "metrics.wandb.mode=disabled", "--set", "metrics.progress_bar=false"]


def records(run_dir: Path) -> list[dict]:
    return read_records(run_dir / "metrics.jsonl")


def fresh(name: str) -> Path:
    run_dir = OUT / name
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    return run_dir


def start(run_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "main.py", "--spec", "specs/fetch_reach.yaml", "--run-dir",
         str(run_dir), *QUIET, *overrides],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def scaling() -> None:
    """Collection env steps/s with 1, 2, 4 observers, learner nearly idle (UTD 0.01)."""
    for observers in (1, 2, 4):
        run_dir = fresh(f"scaling_{observers}")
        start(run_dir, f"--set=observers={observers}", "--set=budget.env_steps=30000",
              "--set=learner.updates_per_env_step=0.01",
              "--set=learner.collect_ahead_env_steps=1000000",
              "--set=eval.every_env_steps=1000000", "--set=collect.envs_per_observer=4",
              "--set=collect.episodes_per_task=4").wait()
        train = [r for r in records(run_dir) if r["event"] == "train"]
        first, last = train[0], records(run_dir)[-1]
        rate = (last["env_steps"] - first["env_steps"]) / (last["wall_time_s"]
                                                           - first["wall_time_s"])
        print(json.dumps({"observers": observers, "env_steps_per_s": round(rate, 1)}))


def lag() -> None:
    """Policy lag of a normal run (weights every 50 updates, 2 orders in flight)."""
    run_dir = fresh("lag")
    start(run_dir, "--set=budget.env_steps=6000").wait()
    lags = [r["perf/policy_lag_updates"] for r in records(run_dir)
            if r["event"] == "train" and "perf/policy_lag_updates" in r]
    print(json.dumps({"policy_lag_updates_mean": round(float(np.mean(lags)), 1),
                      "policy_lag_updates_max": round(float(np.max(lags)), 1)}))


def bytes_per_episode() -> None:
    """Pickled size of an order reply per episode (what TensorPipe carries)."""
    from common.messages import OrderResult
    from common.policy import build_policy, task_shapes
    from common.spec import validate_spec
    from observer.rollout import Rollout

    for task in ("FetchReach-v4", "FetchPush-v4"):
        spec = validate_spec({"tasks": [task], "budget": {"env_steps": 1}}, "bench")
        rollout = Rollout(spec.tasks, task_shapes(spec.tasks), build_policy(spec), 2, 0.2, 0.3)
        batch = rollout.collect(task, 4, True, np.random.default_rng(0))
        size = len(pickle.dumps(OrderResult(1, "observer1", [batch]), protocol=5))
        print(json.dumps({"task": task, "bytes_per_episode": size // 4}))


def recovery() -> None:
    """Seconds from kill -9 of one of two observers to detection, to steps flowing again,
    and to the agent's replacement rejoining."""
    run_dir = fresh("recovery")
    process = start(run_dir, "--set=observers=2", "--set=budget.env_steps=12000")
    while not any(r["event"] == "train" for r in records(run_dir)):
        time.sleep(0.2)
    kids = subprocess.run(["pgrep", "-P", str(process.pid), "-f", "spawn_main"],
                          capture_output=True, text=True).stdout.split()
    killed = time.monotonic()
    os.kill(int(kids[0]), signal.SIGKILL)
    detected = wait_for(run_dir, lambda rs: any(r["event"] == "observer_lost" for r in rs))
    steps = max(r.get("env_steps", 0) for r in records(run_dir))
    flowing = wait_for(run_dir, lambda rs: max(r.get("env_steps", 0) for r in rs) > steps)
    rejoined = wait_for(run_dir, lambda rs: any(r["event"] == "observer_rejoined" for r in rs))
    process.wait()
    print(json.dumps({"detect_s": round(detected - killed, 2),
                      "steps_flowing_again_s": round(flowing - killed, 2),
                      "replacement_rejoined_s": round(rejoined - killed, 2),
                      "finished_budget": records(run_dir)[-1].get("env_steps") == 12000}))


def wait_for(run_dir: Path, condition) -> float:
    """Poll metrics.jsonl until ``condition(records)``; the monotonic time it became true."""
    while not condition(records(run_dir)):
        time.sleep(0.05)
    return time.monotonic()


def kill_loss(trials: int = 3, interval: int = 2000) -> None:
    """Env steps of experience a kill -9 loses with a checkpoint every ``interval`` steps."""
    rng = np.random.default_rng(0)
    lost = []
    for trial in range(trials):
        run_dir = fresh(f"killloss_{trial}")
        process = start(run_dir, "--set=budget.env_steps=1000000",
                        f"--set=checkpoint.every_env_steps={interval}")
        target = interval + int(rng.integers(0, 3 * interval))
        while max([r.get("env_steps", 0) for r in records(run_dir)] or [0]) < target:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        collected = max(r.get("env_steps", 0) for r in records(run_dir))
        saved = load_checkpoint(run_dir / "checkpoints" / LATEST)["counters"]["env_steps"]
        lost.append(collected - saved)
    print(json.dumps({"checkpoint_every_env_steps": interval, "lost_env_steps": lost,
                      "mean_lost": float(np.mean(lost))}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="?", default="all",
                        choices=["scaling", "lag", "bytes", "recovery", "killloss", "all"])
    what = parser.parse_args().what
    OUT.mkdir(parents=True, exist_ok=True)
    steps = {"scaling": scaling, "lag": lag, "bytes": bytes_per_episode,
             "recovery": recovery, "killloss": kill_loss}
    for name, step in steps.items():
        if what in (name, "all"):
            step()


if __name__ == "__main__":
    main()
