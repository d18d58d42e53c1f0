"""Starts observer processes and the agent's RPC endpoint, runs the principal, tears down."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed.rpc as rpc

from agent.learn.transfer import apply_transfer
from agent.ranks.learner_ranks import RankGroup
from agent.report.metrics import MetricsPipeline, Record
from agent.report.sinks import JsonlSink, ProgressSink, TensorBoardSink, WandbSink
from agent.run.principal import Principal
from agent.run.run_signals import RunError
from agent.run.transport import RpcTransport
from common import rpc_group
from common.fingerprint import fingerprint
from common.rpc_group import Endpoint, free_port, observer_name, observer_rank
from common.spec import Spec
from observer.worker import run_observer, stop_serving

JOIN_TIMEOUT_S = 10.0
STOP_MEMBERS_TIMEOUT_S = 2.0


def build_metrics(spec: Spec, run_dir: Path, initial_env_steps: int) -> MetricsPipeline:
    """The sinks the spec asks for, behind one bounded queue."""
    cfg = spec.metrics
    sinks = [JsonlSink(run_dir / "metrics.jsonl")]
    if cfg.tensorboard:
        sinks.append(TensorBoardSink(run_dir))
    if cfg.wandb.mode != "disabled":
        sinks.append(WandbSink(
            run_dir, cfg.wandb.mode, cfg.wandb.project, cfg.wandb.entity,
            spec.model_dump(mode="json"), run_id=run_dir.resolve().name,
        ))
    if cfg.progress_bar:
        sinks.append(ProgressSink(spec.budget.env_steps, initial_env_steps))
    return MetricsPipeline(sinks, cfg.queue_size)


class LocalObservers:
    """The observer processes a local run spawns, and restarts when one is lost."""

    def __init__(self, spec: Spec, endpoint: Endpoint) -> None:
        self.spec_data = spec.model_dump(mode="json")
        self.endpoint = endpoint
        self.restarts_left = spec.distributed.observer_restarts
        self._context = mp.get_context("spawn")
        self._lock = threading.Lock()  # replace() runs on a helper thread
        self._closed = False
        self.processes = {observer_name(rank): self._start(rank)
                          for rank in range(1, endpoint.world_size)}

    def _start(self, rank: int) -> mp.process.BaseProcess:
        process = self._context.Process(
            target=run_observer,
            args=(self.spec_data, rank, self.endpoint.addr, self.endpoint.port, os.getpid()),
            name=observer_name(rank),
        )
        process.start()
        return process

    def exited(self) -> list[str]:
        return [name for name, p in self.processes.items() if not p.is_alive()]

    def replace(self, name: str) -> bool:
        """Stop the lost observer ``name`` (it may only be hung) and start a fresh one with
        the same rank, while restarts are left and the run is not ending: whether it did."""
        with self._lock:
            if self._closed or self.restarts_left <= 0:
                return False
            self.restarts_left -= 1
            _stop(self.processes[name], time.monotonic())
            self.processes[name] = self._start(observer_rank(name))
            return True

    def close(self) -> None:
        """Join every observer until one shared deadline, then SIGKILL the rest."""
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for process in self.processes.values():
            _stop(process, deadline)


def _stop(process: mp.process.BaseProcess, deadline: float) -> None:
    """Join ``process`` until ``deadline`` (monotonic), then SIGKILL it (works on stopped
    ones too)."""
    process.join(max(0.0, deadline - time.monotonic()))
    if process.is_alive():
        process.kill()
        process.join(5)


def train_local(
    spec: Spec, run_dir: Path, resume_state: dict | None = None, comm: Any | None = None
) -> Record:
    """Spawn ``spec.observers`` observer processes on this host and train to the budget."""
    dist = spec.distributed
    endpoint = Endpoint(dist.master_addr, dist.master_port or free_port(dist.master_addr),
                        spec.observers + 1)
    local = LocalObservers(spec, endpoint)
    try:
        return train_agent(spec, run_dir, resume_state, endpoint, local, comm)
    finally:
        local.close()


def train_agent(
    spec: Spec,
    run_dir: Path,
    resume_state: dict | None,
    endpoint: Endpoint,
    local: LocalObservers | None = None,
    comm: Any | None = None,
) -> Record:
    """Be the principal agent of ``endpoint`` and train to the budget.

    With ``comm`` (MPI), this is learner rank 0 and drives the other learner ranks.
    """
    torch.set_num_threads(spec.learner.torch_threads)
    # a logging handler that fails (wandb's, on a full disk) must print no traceback: the
    # run reports the cause itself, in one line
    logging.raiseExceptions = False
    group = RankGroup(comm, list(spec.tasks)) if comm is not None else None
    try:
        principal = _build_principal(spec, run_dir, resume_state, endpoint.world_size, group,
                                     local.replace if local is not None else None)
        if group is not None:
            group.start(spec.model_dump(mode="json"), run_dir, principal.learner.state_dict(),
                        principal.replay_episodes_by_rank)
        return _serve(principal, endpoint, local)
    finally:
        if group is not None:
            group.close()


def _serve(principal: Principal, endpoint: Endpoint, local: LocalObservers | None) -> Record:
    """Start the RPC group, wait for every observer, run the principal, end the group once."""
    timeout = principal.spec.distributed.start_timeout_s
    try:
        rpc_group.start_group(endpoint.addr, endpoint.port, timeout,
                              principal.spec.distributed.transport,
                              fingerprint(principal.spec))
    except Exception as exc:
        raise RunError(f"cannot start the run at {endpoint.addr}:{endpoint.port}: {exc}") from exc
    try:
        try:
            rpc_group.wait_for_members(principal.pool.names, timeout,
                                       lambda: bool(local and local.exited()))
        except TimeoutError as exc:
            exited = local.exited() if local is not None else []
            raise RunError(
                f"observers did not join at {endpoint.addr}:{endpoint.port} within "
                f"{timeout:.0f} s (exited: {exited or 'none'}): {exc}"
            ) from exc
        return asyncio.run(principal.run())
    finally:
        _end_group()


def _end_group() -> None:
    """Tell the observers to leave, then one immediate ``rpc.shutdown`` (never a second)."""
    try:
        rpc_group.stop_members(stop_serving, STOP_MEMBERS_TIMEOUT_S)
    except Exception as exc:  # the run's own result matters more
        print(f"warning: could not ask observers to leave: {exc!r}", file=sys.stderr)
    try:
        rpc.shutdown(graceful=False)
    except Exception as exc:
        print(f"warning: RPC shutdown was not clean: {exc!r}", file=sys.stderr)


def _build_principal(
    spec: Spec, run_dir: Path, resume_state: dict | None, world_size: int,
    group: RankGroup | None, replace_observer: Callable[[str], None] | None,
) -> Principal:
    names = [observer_name(rank) for rank in range(1, world_size)]
    initial = int(resume_state["counters"]["env_steps"]) if resume_state else 0
    metrics = build_metrics(spec, run_dir, initial)
    principal = Principal(
        spec, run_dir, RpcTransport(spec.distributed.rpc_timeout_s), names, metrics, group,
        replace_observer,
    )
    if resume_state is not None:
        principal.load_state_dict(resume_state)
    elif spec.transfer.from_checkpoint:
        apply_transfer(spec, principal.learner, principal.encoder)
        principal.refresh_snapshot()  # observers collect with the transferred policy
    return principal
