"""The observer process: serves orders over torch RPC from a dedicated collection thread.

RPC handlers return at once (``async_execution``); collection runs on one thread per
observer, so no RPC thread is ever blocked by env stepping.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time

import numpy as np
import torch
import torch.distributed.rpc as rpc

from agent.model import build_policy, task_shapes
from agent.spec import Spec, validate_spec
from agent.transport import observer_name, rpc_options
from observer.messages import Order, OrderResult
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


@rpc.functions.async_execution
def serve_order(order: Order) -> torch.futures.Future:
    """RPC entry point: hand ``order`` to this process's collection thread."""
    if _SERVICE is None:
        raise RuntimeError("observer service is not running in this process")
    return _SERVICE.submit(order)


def run_observer(spec_data: dict, rank: int, world_size: int, addr: str, port: int) -> None:
    """Process entry: join the RPC group and serve until the agent shuts it down."""
    global _SERVICE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when to stop
    torch.set_num_threads(1)
    spec = validate_spec(spec_data, "spec from agent")
    name = observer_name(rank)
    _SERVICE = ObserverService(spec, name)
    options = rpc_options(addr, port, spec.distributed.start_timeout_s)
    rpc.init_rpc(name, rank=rank, world_size=world_size, rpc_backend_options=options)
    try:
        rpc.shutdown()  # serves orders until the agent shuts the group down
    except Exception as exc:  # the agent stopped without the graceful barrier
        print(f"{name}: agent gone ({exc.__class__.__name__}); exiting", file=sys.stderr)
    finally:
        _SERVICE.close()
