"""Starts observer processes and the agent's RPC endpoint, runs the principal, tears down."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed.rpc as rpc

from agent.learner_ranks import RankGroup
from agent.metrics import MetricsPipeline, Record
from agent.principal import Principal, RunError
from agent.sinks import JsonlSink, ProgressSink, TensorBoardSink, WandbSink
from agent.spec import Spec
from agent.transfer import apply_transfer
from agent.transport import (
    AGENT_NAME,
    Endpoint,
    RpcTransport,
    free_port,
    observer_name,
    rpc_options,
)
from observer.worker import run_observer

JOIN_TIMEOUT_S = 10.0


def build_metrics(spec: Spec, run_dir: Path, initial_env_steps: int) -> MetricsPipeline:
    """The sinks the spec asks for, behind one bounded queue."""
    cfg = spec.metrics
    sinks = [JsonlSink(run_dir / "metrics.jsonl")]
    if cfg.tensorboard:
        sinks.append(TensorBoardSink(run_dir / "tensorboard"))
    if cfg.wandb.mode != "disabled":
        sinks.append(WandbSink(
            run_dir, cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity,
            spec.model_dump(mode="json"), run_id=run_dir.resolve().name,
        ))
    if cfg.progress_bar:
        sinks.append(ProgressSink(spec.budget.env_steps, initial_env_steps))
    return MetricsPipeline(sinks, cfg.queue_size)


def train_local(
    spec: Spec, run_dir: Path, resume_state: dict | None = None, comm: Any | None = None
) -> Record:
    """Spawn ``spec.observers`` observer processes on this host and train to the budget."""
    dist = spec.distributed
    endpoint = Endpoint(dist.master_addr, dist.master_port or free_port(dist.master_addr),
                        spec.observers + 1)
    spec_data = spec.model_dump(mode="json")
    ctx = mp.get_context("spawn")
    processes = [
        ctx.Process(
            target=run_observer,
            args=(spec_data, rank, endpoint.world_size, endpoint.addr, endpoint.port),
            name=observer_name(rank),
        )
        for rank in range(1, endpoint.world_size)
    ]
    for process in processes:
        process.start()
    try:
        return train_agent(spec, run_dir, resume_state, endpoint, processes, comm)
    finally:
        for process in processes:
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():  # stuck (or stopped): SIGKILL works on both
                process.kill()
                process.join(5)


def train_agent(
    spec: Spec,
    run_dir: Path,
    resume_state: dict | None,
    endpoint: Endpoint,
    local_observers: list[mp.process.BaseProcess] | None = None,
    comm: Any | None = None,
) -> Record:
    """Be the principal agent (RPC rank 0) of ``endpoint`` and train to the budget.

    With ``comm`` (MPI), this is learner rank 0 and drives the other learner ranks.
    """
    torch.set_num_threads(spec.learner.torch_threads)
    group = RankGroup(comm, list(spec.tasks)) if comm is not None else None
    try:
        principal = _build_principal(spec, run_dir, resume_state, endpoint.world_size, group)
        if group is not None:
            group.start(spec.model_dump(mode="json"), run_dir, principal.learner.state_dict(),
                        principal.replay_episodes_by_rank)
        return _serve(principal, endpoint, local_observers or [])
    finally:
        if group is not None:
            group.close()


def _serve(
    principal: Principal, endpoint: Endpoint, local_observers: list[mp.process.BaseProcess]
) -> Record:
    """Join the RPC group as rank 0, run the principal, shut RPC down once."""
    timeout = principal.spec.distributed.start_timeout_s
    try:
        rpc.init_rpc(
            AGENT_NAME, rank=0, world_size=endpoint.world_size,
            rpc_backend_options=rpc_options(endpoint.addr, endpoint.port, timeout),
        )
    except Exception as exc:
        dead = [p.name for p in local_observers if not p.is_alive()]
        raise RunError(
            f"observers did not join at {endpoint.addr}:{endpoint.port} within {timeout:.0f} s"
            f" (exited: {dead or 'none'}): {exc}"
        ) from exc
    graceful = False
    try:
        end = asyncio.run(principal.run())
        graceful = not principal.lost  # the graceful barrier would wait for the dead
        return end
    finally:
        _shutdown_rpc(graceful)


def _shutdown_rpc(graceful: bool) -> None:
    """One ``rpc.shutdown``: graceful after a clean run, immediate after a failure (a dead
    peer would make the graceful barrier fail). Never a second call."""
    try:
        rpc.shutdown(graceful=graceful)
    except Exception as exc:
        print(f"warning: RPC shutdown was not clean: {exc!r}", file=sys.stderr)


def _build_principal(
    spec: Spec, run_dir: Path, resume_state: dict | None, world_size: int,
    group: RankGroup | None,
) -> Principal:
    names = [observer_name(rank) for rank in range(1, world_size)]
    initial = int(resume_state["counters"]["env_steps"]) if resume_state else 0
    metrics = build_metrics(spec, run_dir, initial)
    principal = Principal(
        spec, run_dir, RpcTransport(spec.distributed.rpc_timeout_s), names, metrics, group
    )
    if resume_state is not None:
        principal.load_state_dict(resume_state)
    elif spec.transfer.from_checkpoint:
        apply_transfer(spec, principal.learner, principal.encoder)
        principal.refresh_snapshot()  # observers collect with the transferred policy
    return principal
