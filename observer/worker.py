"""The observer process: serves orders over torch RPC from a dedicated collection thread.

RPC handlers return at once (``async_execution``); collection runs on one thread per
observer, so no RPC thread is ever blocked by env stepping. The main thread joins the
run, then checks every few seconds that the agent is alive and still counts this process
in; it leaves when the agent says stop, is gone, or has dropped it.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time

import numpy as np
import torch
import torch.distributed.rpc as rpc

from common.fingerprint import fingerprint
from common.messages import Order, OrderResult
from common.policy import build_policy, task_shapes
from common.rpc_group import AGENT_NAME, is_member, join_group, observer_name
from common.spec import Spec, validate_spec
from observer.rollout import Rollout


class ObserverService:
    """Owns the envs and the policy copy; runs orders one after another."""

    def __init__(self, spec: Spec, name: str) -> None:
        self.name = name
        self.policy = build_policy(spec)
        self.rollout = Rollout(
            spec.tasks,
            task_shapes(spec.tasks),
            self.policy,
            spec.collect.envs_per_observer,
            spec.collect.noise_std,
            spec.collect.random_eps,
            spec.collect.grasped_start_share,
        )
        self._orders: queue.Queue[tuple[Order, torch.futures.Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=f"{name}-collect", daemon=True)
        self._thread.start()

    def submit(self, order: Order) -> torch.futures.Future:
        """Queue ``order``; the returned future completes with its :class:`OrderResult`."""
        future: torch.futures.Future = torch.futures.Future()
        self._orders.put((order, future))
        return future

    def run(self, order: Order) -> OrderResult:
        """Collect every episode ``order`` asks for, with its policy snapshot if it has one."""
        start = time.perf_counter()
        if order.policy is not None and order.policy.version >= self.policy.version:
            self.policy.load(order.policy)  # orders may arrive reordered: never go back
        rng = np.random.default_rng(order.seed)
        batches = [self.rollout.collect(task, n, order.explore, rng) for task, n in order.tasks]
        return OrderResult(order.order_id, self.name, batches, time.perf_counter() - start)

    def _work(self) -> None:
        # OpenMP keeps the thread count per thread: without this the policy forward runs
        # on a team of one thread per core whose idle worker spins at every barrier
        # (measured: 0.4 core per observer, 60% of its collection time in Linear.forward).
        torch.set_num_threads(1)
        while (item := self._orders.get()) is not None:
            order, future = item
            try:
                future.set_result(self.run(order))
            except Exception as exc:  # reported to the agent through the RPC future
                future.set_exception(exc)

    def close(self) -> None:
        self._orders.put(None)
        self._thread.join(timeout=10)
        self.rollout.close()


_SERVICE: ObserverService | None = None
_STOP = threading.Event()
LIVENESS_EVERY_S = 2.0
PARENT_CHECK_EVERY_S = 0.5


@rpc.functions.async_execution
def serve_order(order: Order) -> torch.futures.Future:
    """RPC entry point: hand ``order`` to this process's collection thread."""
    if _SERVICE is None:
        raise RuntimeError("observer service is not running in this process")
    return _SERVICE.submit(order)


def stop_serving() -> None:
    """RPC entry point: the agent ends the run."""
    _STOP.set()


def run_observer(
    spec_data: dict, rank: int, addr: str, port: int, agent_pid: int | None = None
) -> bool:
    """Process entry: join the agent's run as ``observer<rank>`` and serve until it ends.

    A local observer (spawned by the agent process ``agent_pid``) exits as soon as that
    process is gone, during start-up too, and ignores SIGTERM: a signal to the whole
    process group is the agent's to handle, and it stops its observers itself.

    Returns whether the agent ended the run (rather than vanished or dropped this
    observer). Raises :class:`common.rpc_group.Refused` if the agent runs other code or
    another spec, :class:`common.rpc_group.NameTaken` if an observer of this rank is still
    in the run, :class:`common.rpc_group.JoinFailed` if joining failed.
    """
    global _SERVICE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when to stop
    if agent_pid is not None:
        _exit_when_gone(agent_pid)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    spec = validate_spec(spec_data, "spec from agent")
    name = observer_name(rank)
    _SERVICE = ObserverService(spec, name)
    try:
        worker_id = join_group(name, addr, port, spec.distributed.start_timeout_s,
                               spec.distributed.transport, fingerprint(spec))
        return _serve_until_stopped(name, worker_id, spec.distributed.rpc_timeout_s)
    finally:
        _SERVICE.close()


def _exit_when_gone(parent_pid: int) -> None:
    """Exit this process once ``parent_pid`` is no longer its parent (it died: orphans are
    re-parented). A thread, not PR_SET_PDEATHSIG, which fires when the spawning *thread*
    ends, and the agent spawns replacements from helper threads."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_EVERY_S)
        os._exit(1)

    threading.Thread(target=watch, name="agent-watchdog", daemon=True).start()


def _serve_until_stopped(name: str, worker_id: int, timeout_s: float) -> bool:
    """Serve (on RPC threads) until told to stop, the agent is gone, or it dropped us;
    whether we were told to stop."""
    while not _STOP.wait(LIVENESS_EVERY_S):
        try:
            member = rpc.rpc_sync(AGENT_NAME, is_member, args=(name, worker_id),
                                  timeout=timeout_s)
        except Exception as exc:
            print(f"{name}: agent gone ({exc.__class__.__name__}); exiting", file=sys.stderr)
            break
        if not member:
            print(f"{name}: the agent dropped this observer (it stopped answering); exiting",
                  file=sys.stderr)
            break
    stopped = _STOP.is_set()
    if stopped:
        time.sleep(0.2)  # let the reply to stop_serving go out before the agent stops
    rpc.shutdown(graceful=False)
    return stopped
