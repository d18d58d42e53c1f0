"""Command line: train (``--spec``), resume (``--resume``) and ``eval --checkpoint``.

Bad input exits with status 2 and one line naming the file, key or value, before any
process is spawned.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.machine import check_local_observers_fit
from agent.ranks.mpi import mpi_world
from common.spec import Spec, SpecError, dump_spec, load_spec, validate_spec

if TYPE_CHECKING:  # torch loads only once a run starts: --help and bad input answer fast
    from common.rpc_group import Endpoint

EXIT_BAD_INPUT = 2
RUNS_ROOT = Path("runs")


class UsageError(Exception):
    """Bad command-line input (exit status 2)."""


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Multi-task TD3 + HER on Fetch with RPC observers. "
        "Subcommands: 'main.py eval --checkpoint PATH --episodes N [--video DIR]', "
        "'main.py summary RUN_DIR', 'main.py plot RUN_DIR [RUN_DIR ...] [--out FILE]'.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", type=Path, help="YAML spec to train from")
    source.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a stopped run")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a spec key (YAML value; repeatable)")
    parser.add_argument("--run-dir", type=Path, help="where to write (default: runs/<spec>-<time>)")
    parser.add_argument("--role", choices=["local", "agent", "observer"], default="local",
                        help="local: agent + spawned observers (default); agent or observer: "
                        "one process of a multi-host run")
    parser.add_argument("--master", metavar="HOST:PORT",
                        help="the agent's rendezvous address (default: distributed.master_*)")
    parser.add_argument("--world-size", type=int, help="agent + observers (multi-host roles)")
    parser.add_argument("--rank", type=int, help="this observer's rank, 1..world-size-1")
    return parser


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py eval",
                                     description="Print per-task success of a checkpoint as JSON.")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--video", type=Path, metavar="DIR",
                        help="also write DIR/<task>.mp4 of the episodes (rendered offscreen)")
    return parser


def _new_run_dir(spec_path: Path, run_dir: Path | None) -> Path:
    if run_dir is None:
        run_dir = RUNS_ROOT / f"{spec_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (run_dir / "metrics.jsonl").exists():
        raise UsageError(f"{run_dir}: already holds a run; use --resume {run_dir} to continue it")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _prepare_train(
    args: argparse.Namespace,
) -> tuple[Spec, Path, dict | None, Endpoint | None]:
    """Validate everything a training run needs before writing anything; returns the spec,
    run dir, resume state and (``--role agent``) the rendezvous endpoint."""
    if args.resume is None:
        spec = load_spec(args.spec, args.overrides)
        endpoint = _agent_endpoint(args, spec)
        if spec.transfer.from_checkpoint:
            _check_transfer(spec)
        run_dir = _new_run_dir(args.spec, args.run_dir)
        dump_spec(spec, run_dir / "spec.yaml")
        return spec, run_dir, None, endpoint
    from agent.checkpoint import LATEST, UnreadableCheckpoint, load_run_checkpoint

    run_dir = args.resume
    if not (run_dir / "spec.yaml").is_file():
        raise UsageError(f"{run_dir}: not a run directory (no spec.yaml)")
    checkpoint = run_dir / "checkpoints" / LATEST
    if not checkpoint.is_file():
        raise UsageError(f"{checkpoint}: no checkpoint to resume from")
    try:
        state = load_run_checkpoint(checkpoint)
    except UnreadableCheckpoint as exc:
        raise UsageError(f"--resume {run_dir}: {exc}") from None
    spec = load_spec(run_dir / "spec.yaml", args.overrides)
    _check_same_model(spec, state["spec"], checkpoint)
    endpoint = _agent_endpoint(args, spec)
    dump_spec(spec, run_dir / "spec.yaml")
    return spec, run_dir, state, endpoint


FIXED_ON_RESUME = ("tasks", "learner.algo", "learner.hidden_sizes", "model.arch", "model.rank",
                   "model.freeze", "scheduler.name", "weighting.name", "meta.update",
                   "meta.inner_optimizer")
"""Spec keys that shape the networks, optimizers or saved strategy state."""


def _check_same_model(spec: Spec, saved: dict, checkpoint: Path) -> None:
    current = spec.model_dump(mode="json")
    old_spec = validate_spec(saved, str(checkpoint)).model_dump(mode="json")  # fills defaults
    for key in FIXED_ON_RESUME:
        old, new = old_spec, current
        for part in key.split("."):
            old, new = old[part], new[part]
        if old != new:
            raise UsageError(
                f"{checkpoint}: {key} is {old!r} in the checkpoint, {new!r} now; "
                "a resume cannot change it (start a new run, or transfer.from_checkpoint)"
            )


def _check_transfer(spec: Spec) -> None:
    """Map the transfer source onto this spec's networks once, before anything starts."""
    from agent.learn.build import build_learner
    from agent.learn.transfer import apply_transfer
    from common.policy import build_encoder

    encoder = build_encoder(spec)
    apply_transfer(spec, build_learner(spec, encoder), encoder)


def _run_eval(argv: list[str]) -> int:
    args = _eval_parser().parse_args(argv)
    if not args.checkpoint.is_file():
        raise UsageError(f"{args.checkpoint}: checkpoint not found")
    if args.episodes <= 0:
        raise UsageError(f"--episodes {args.episodes}: must be positive")
    if args.video is not None and args.video.exists() and not args.video.is_dir():
        raise UsageError(f"--video {args.video}: exists and is not a directory")
    from agent.checkpoint import UnreadableCheckpoint
    from agent.report.evaluate import evaluate_checkpoint
    from agent.report.video import VideoError

    try:
        success = evaluate_checkpoint(args.checkpoint, args.episodes, args.seed, args.video)
    except UnreadableCheckpoint as exc:
        raise UsageError(f"--checkpoint: {exc}") from None
    except VideoError as exc:
        print(f"error: --video: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(success))
    return 0


def _agent_endpoint(args: argparse.Namespace, spec: Spec) -> Endpoint | None:
    """``--role agent``: the rendezvous endpoint. A local run: None, once its observers are
    known to fit in this machine's memory."""
    if args.role == "agent":
        return _endpoint(args, spec)
    check_local_observers_fit(spec)
    return None


def _endpoint(args: argparse.Namespace, spec: Spec) -> Endpoint:
    """Multi-host rendezvous from the CLI, falling back to the spec's distributed keys."""
    dist = spec.distributed
    addr, port = dist.master_addr, dist.master_port
    if args.master is not None:
        host, sep, port_text = args.master.rpartition(":")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"--master {args.master!r}: expected HOST:PORT")
        addr, port = host, int(port_text)
    if ":" in addr or addr in ("0.0.0.0", "*"):
        raise UsageError(f"--master {addr!r}: give one IPv4 address or host name of the agent "
                         "(IPv6 and wildcard addresses are not supported)")
    if port == 0:
        raise UsageError(f"--role {args.role}: needs a fixed port (--master HOST:PORT)")
    world_size = args.world_size if args.world_size is not None else dist.world_size
    if world_size is None or world_size < 2:
        raise UsageError(f"--role {args.role}: --world-size must be at least 2 "
                         f"(agent + observers), got {world_size}")
    from common.rpc_group import Endpoint

    return Endpoint(addr, port, world_size)


def _check_same_ranks(state: dict | None, comm: Any | None, run_dir: Path | None) -> None:
    """Replay shards belong to ranks: a resume needs the same number of learner ranks."""
    if state is None:
        return
    saved = len(state["counters"].get("replay_episodes_by_rank") or []) + 1
    now = comm.Get_size() if comm is not None else 1
    if saved != now:
        raise UsageError(f"{run_dir}: saved with {saved} learner rank(s), resumed with {now}; "
                         f"resume with mpiexec -n {saved}" if saved > 1 else
                         f"{run_dir}: saved without MPI; resume without mpiexec")


def _run_observer(args: argparse.Namespace) -> int:
    if args.spec is None or args.run_dir is not None:
        raise UsageError("--role observer: takes --spec and no --run-dir or --resume")
    spec = load_spec(args.spec, args.overrides)
    endpoint = _endpoint(args, spec)
    rank = args.rank if args.rank is not None else spec.distributed.rank
    if rank is None or not 0 < rank < endpoint.world_size:
        raise UsageError(f"--rank {rank}: must be in 1..{endpoint.world_size - 1}")
    from common.rpc_group import JoinFailed, NameTaken, Refused
    from observer.worker import run_observer

    try:
        stopped = run_observer(spec.model_dump(mode="json"), rank, endpoint.addr, endpoint.port)
    except NameTaken as exc:
        raise UsageError(f"--rank {rank}: {exc}") from None
    except Refused as exc:
        raise UsageError(f"{args.spec}: {exc}") from None
    except JoinFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if stopped else 1  # dropped, or the agent is gone: a supervisor may restart it


def _run_train(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    comm = mpi_world()
    if comm is not None and comm.Get_rank() > 0:
        from agent.ranks.learner_ranks import run_learner_rank

        return run_learner_rank(comm)
    try:
        if args.role == "observer":
            if comm is not None:
                raise UsageError("--role observer: observers do not run under mpiexec")
            return _run_observer(args)
        if args.resume is not None and args.run_dir is not None:
            raise UsageError("--run-dir: not allowed with --resume (the run directory is given)")
        spec, run_dir, resume_state, endpoint = _prepare_train(args)
        _check_same_ranks(resume_state, comm, args.resume)
        if comm is not None and comm.Get_size() > 1 and spec.meta.update != "none":
            raise UsageError(f"meta.update {spec.meta.update!r}: needs a single learner rank "
                             "(run without mpiexec)")
    except BaseException:
        if comm is not None:
            comm.bcast(None, root=0)  # the other learner ranks exit too
        raise
    from agent.launcher import train_agent, train_local
    from agent.run.run_signals import RunError

    print(f"run directory: {run_dir}", file=sys.stderr)
    try:
        if endpoint is None:
            train_local(spec, run_dir, resume_state, comm)
        else:
            train_agent(spec, run_dir, resume_state, endpoint, comm=comm)
    except RunError as exc:
        print(f"error: {exc} (checkpoint and metrics saved in {run_dir})", file=sys.stderr)
        return 1
    finally:
        _plot(run_dir)
    from agent.report.summary import format_summary

    print(format_summary(run_dir))
    return 0


def _run_plot(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="main.py plot",
        description="Per-task success against env steps and wall-clock, collection share and "
        "loss weight, for several runs in one figure (seeds of one spec: mean and band).")
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=Path("compare.png"))
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        if not (run_dir / "spec.yaml").is_file() or not (run_dir / "metrics.jsonl").is_file():
            raise UsageError(f"{run_dir}: not a run directory (no spec.yaml or metrics.jsonl)")
    from agent.report.plotting import group_by_spec, plot_runs

    plot_runs(group_by_spec(args.run_dirs), args.out)
    print(args.out)
    return 0


def _run_summary(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py summary",
                                     description="Print a run's per-task summary again.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    args = parser.parse_args(argv)
    if not (args.run_dir / "metrics.jsonl").is_file():
        raise UsageError(f"{args.run_dir}: not a run directory (no metrics.jsonl)")
    from agent.report.summary import format_summary

    print(format_summary(args.run_dir))
    return 0


def _plot(run_dir: Path) -> None:
    from agent.report.plotting import plot_success

    if not (run_dir / "metrics.jsonl").exists():
        return
    try:
        plot_success(run_dir / "metrics.jsonl", run_dir / "success.png")
    except Exception as exc:  # a missing plot must not hide how the run ended
        print(f"warning: could not write success.png: {exc!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python main.py``."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["eval"]:
            return _run_eval(argv[1:])
        if argv[:1] == ["summary"]:
            return _run_summary(argv[1:])
        if argv[:1] == ["plot"]:
            return _run_plot(argv[1:])
        return _run_train(argv)
    except (SpecError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
