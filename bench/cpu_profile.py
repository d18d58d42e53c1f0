"""Where the cores go in a running job, and the learner's updates/s against a plain update.

Starts ``main.py`` in each layout (transport, learner threads, learner ranks), waits until
the learner is past warm-up, then samples every thread of every process of the job from
``/proc`` for ``--seconds``. Prints, per layout: CPU (cores) per process and per thread
name, collection env steps/s and learner updates/s over the window (from metrics.jsonl),
and those updates/s against a plain single-thread PyTorch TD3 update at the same batch
measured in the same invocation (``bench/learner_throughput.py``'s reference).

    python -m bench.cpu_profile [--layouts shm-1t uv-1t uv-2t mpi2-uv-1t] [--seconds 30]
                                [--spec specs/fetch_push.yaml] [--set KEY=VALUE ...]

A layout name is ``[mpiN-]TRANSPORT-Kt[p][s]``: N learner ranks under mpiexec (each with
batch/N rows, so an update still covers ``--batch-size`` transitions), the TensorPipe
transport, K intra-op threads per learner process; ``p``: OpenMP threads wait passively
(``OMP_WAIT_POLICY=PASSIVE``) instead of spinning; ``s``: a rank waiting in an MPI
collective spins (Open MPI's own default) instead of giving its core away as learner ranks
do (``agent.ranks.mpi.YIELD_WHILE_WAITING``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.distributed import QUIET, records
from bench.learner_throughput import PlainTD3, random_batch, rate
from common.spec import load_spec

OUT = Path("bench/out/cpu_profile")
TICKS = os.sysconf("SC_CLK_TCK")
LAYOUT = re.compile(
    r"^(?:mpi(?P<ranks>\d+)-)?(?P<transport>uv|shm)-(?P<threads>\d+)t(?P<passive>p?)"
    r"(?P<spinning>s?)$"
)


@dataclass(frozen=True)
class Layout:
    name: str
    ranks: int
    transport: str
    threads: int
    passive: bool
    spinning: bool

    @classmethod
    def parse(cls, name: str) -> Layout:
        match = LAYOUT.match(name)
        if match is None:
            raise SystemExit(f"error: layout {name!r}: expected [mpiN-](uv|shm)-Kt[p][s]")
        return cls(name, int(match["ranks"] or 1), match["transport"], int(match["threads"]),
                   bool(match["passive"]), bool(match["spinning"]))


def command(layout: Layout, args: argparse.Namespace, run_dir: Path) -> list[str]:
    """``main.py`` for ``layout``; ranks share the batch, so each update covers ``batch_size``."""
    batch_size = args.batch_size
    main = [sys.executable, "main.py", "--spec", args.spec, "--run-dir", str(run_dir), *QUIET,
            "--set", "budget.env_steps=10000000", "--set", "eval.every_env_steps=10000000",
            "--set", "checkpoint.every_env_steps=10000000",
            "--set", f"learner.batch_size={batch_size // layout.ranks}",
            "--set", f"learner.updates_per_env_step={args.utd}",
            "--set", f"learner.torch_threads={layout.threads}",
            "--set", f"distributed.transport={layout.transport}"]
    for item in args.overrides:
        main += ["--set", item]
    if layout.ranks == 1:
        return main
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    return [mpiexec, "--allow-run-as-root", "--oversubscribe", "-n", str(layout.ranks), *main]


def session_threads(sid: int) -> dict[tuple[int, int], tuple[str, str, int]]:
    """(pid, tid) -> (process label, thread name, CPU ticks) for every thread of session."""
    out = {}
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            stat = (pid_dir / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) != sid:  # field 6 of stat: session id
                continue
            label = process_label(pid_dir)
            for task in (pid_dir / "task").iterdir():
                tstat = (task / "stat").read_text()
                name = tstat[tstat.index("(") + 1 : tstat.rindex(")")]
                tfields = tstat[tstat.rindex(")") + 2 :].split()
                ticks = int(tfields[11]) + int(tfields[12])  # utime + stime
                out[(int(pid_dir.name), int(task.name))] = (label, name, ticks)
        except (OSError, ValueError):
            continue  # a process or thread that ended while we read it
    return out


def process_label(pid_dir: Path) -> str:
    """agent / observer / learner-rankN / mpiexec, from the command line and environment."""
    cmdline = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if "spawn_main" in cmdline:
        return "observer"
    if "main.py" not in cmdline:
        return Path(cmdline.split(" ")[0]).name or "other"
    environ = (pid_dir / "environ").read_bytes().split(b"\0")
    rank = next((e.split(b"=")[1].decode() for e in environ
                 if e.startswith(b"OMPI_COMM_WORLD_RANK=")), "0")
    return "agent" if rank == "0" else f"learner-rank{rank}"


def cpu_over(sid: int, seconds: float) -> dict[str, dict[str, float]]:
    """Cores used per process label and thread name over ``seconds``."""
    before = session_threads(sid)
    time.sleep(seconds)
    after = session_threads(sid)
    usage: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, (label, name, ticks) in after.items():
        spent = ticks - before.get(key, (label, name, 0))[2]
        usage[label][name] += spent / TICKS / seconds
    return usage


def window_rates(run_dir: Path, start_s: float, end_s: float) -> tuple[float, float]:
    """Env steps/s and updates/s between two wall-clock offsets of the run (train records)."""
    train = [r for r in records(run_dir) if r["event"] == "train"]
    inside = [r for r in train if start_s <= r["wall_time_s"] <= end_s]
    if len(inside) < 2:
        return float("nan"), float("nan")
    first, last = inside[0], inside[-1]
    dt = last["wall_time_s"] - first["wall_time_s"]
    return ((last["env_steps"] - first["env_steps"]) / dt,
            (last["updates"] - first["updates"]) / dt)


def measure_running(command: list[str], run_dir: Path, name: str, seconds: float,
                    warmup_s: float, env: dict[str, str] | None = None
                    ) -> tuple[dict[str, dict[str, float]], float, float]:
    """Start ``command`` (a ``main.py`` run writing to ``run_dir``), wait until it has
    trained ``warmup_s``, then measure for ``seconds``: cores per process label and thread,
    env steps/s and updates/s. The run is killed afterwards."""
    shutil.rmtree(run_dir, ignore_errors=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    try:
        started = time.monotonic()
        while not any(r["event"] == "train" for r in records(run_dir)):
            if process.poll() is not None or time.monotonic() - started > 300:
                raise SystemExit(f"error: {name} did not start training")
            time.sleep(0.5)
        time.sleep(warmup_s)
        offset = max(r["wall_time_s"] for r in records(run_dir) if "wall_time_s" in r)
        usage = cpu_over(process.pid, seconds)
        time.sleep(2)  # let the window's last train record land
        env_rate, update_rate = window_rates(run_dir, offset, offset + seconds + 2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return usage, env_rate, update_rate


def profile(layout: Layout, args: argparse.Namespace, plain_rate: float) -> dict:
    run_dir = OUT / layout.name
    env = {**os.environ, **({"OMP_WAIT_POLICY": "PASSIVE"} if layout.passive else {}),
           **({"OMPI_MCA_mpi_yield_when_idle": "0"} if layout.spinning else {})}
    usage, env_rate, update_rate = measure_running(
        command(layout, args, run_dir), run_dir, f"layout {layout.name}", args.seconds,
        args.warmup_s, env)
    busy = {label: threads for label, threads in usage.items() if sum(threads.values()) >= 0.01}
    return {
        "layout": layout.name,
        "env_steps_per_s": round(env_rate, 1),
        "updates_per_s": round(update_rate, 2),
        "samples_per_s": round(update_rate * args.batch_size),
        "ratio_to_plain_1_thread": round(update_rate / plain_rate, 3),
        "cpu_cores": {label: round(sum(threads.values()), 2) for label, threads in busy.items()},
        "threads": {label: {name: round(v, 3) for name, v in sorted(
            threads.items(), key=lambda kv: -kv[1]) if v >= 0.01}
            for label, threads in busy.items()},
    }


def plain_updates_per_s(args: argparse.Namespace, seconds: float) -> float:
    """The reference: a plain PyTorch TD3 update of the spec's network, one thread, nothing
    else running."""
    torch.set_num_threads(1)
    learner = load_spec(args.spec, args.overrides).learner
    plain, batch = PlainTD3(learner), random_batch(args.batch_size)
    return max(rate(lambda: plain.update(batch), seconds) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", nargs="+",
                        default=["shm-1t", "uv-1t", "uv-2t", "mpi2-uv-1t"])
    parser.add_argument("--spec", default="specs/fetch_push.yaml")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--utd", type=float, default=0.05,
                        help="learner.updates_per_env_step of the profiled job")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="spec override for every layout")
    args = parser.parse_args()
    layouts = [Layout.parse(name) for name in args.layouts]
    OUT.mkdir(parents=True, exist_ok=True)
    plain = plain_updates_per_s(args, 3.0)
    print(json.dumps({"plain_td3_1_thread_updates_per_s": round(plain, 2),
                      "batch_size": args.batch_size, "overrides": args.overrides}), flush=True)
    for layout in layouts:
        print(json.dumps(profile(layout, args, plain)), flush=True)


if __name__ == "__main__":
    main()
