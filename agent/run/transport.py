"""Agent ⇄ observer transport: one interface, torch RPC (TensorPipe) as the implementation."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

import torch.distributed.rpc as rpc

from common import rpc_group
from common.messages import Order, OrderResult


class Transport(Protocol):
    """Sends an order to a named observer; the reply arrives as an asyncio future."""

    def submit(self, observer: str, order: Order) -> asyncio.Future[OrderResult]: ...

    def members(self) -> set[str]:
        """Names of the observers (and agent) currently in the run."""
        ...

    def forget(self, observer: str) -> None:
        """Drop a lost ``observer`` from the run so that a replacement may join (blocking)."""
        ...


class ObserverFailed(RuntimeError):
    """An observer's reply is not episodes: its collection raised, or it is another kind
    of process. Handled as that observer's failure, never handed to the learner."""


def checked_reply(observer: str, reply: object) -> OrderResult:
    """``reply`` if it is an :class:`OrderResult`; else :class:`ObserverFailed` (torch RPC
    can deliver an exception raised inside an ``async_execution`` handler as a value)."""
    if isinstance(reply, OrderResult):
        return reply
    if isinstance(reply, BaseException):
        raise ObserverFailed(f"{observer}'s collection failed: {reply!r}") from reply
    raise ObserverFailed(f"{observer} answered with a {type(reply).__name__}, not episodes")


class RpcTransport:
    """``rpc_async`` to ``observer.worker.serve_order``, bridged into the running event loop."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def submit(self, observer: str, order: Order) -> asyncio.Future[OrderResult]:
        from observer.worker import serve_order

        loop = asyncio.get_running_loop()
        result: asyncio.Future[OrderResult] = loop.create_future()
        reply = rpc.rpc_async(observer, serve_order, args=(order,), timeout=self.timeout_s)
        # the remote error, a timeout or a reply that is not episodes is raised on the loop
        reply.add_done_callback(lambda fut: _settle_from_thread(
            loop, result, lambda: checked_reply(observer, fut.wait())))
        return result

    def members(self) -> set[str]:
        return rpc_group.members()

    def forget(self, observer: str) -> None:
        rpc_group.forget(observer)


T = TypeVar("T")


def in_daemon_thread(function: Callable[[], T]) -> asyncio.Future[T]:
    """Run a blocking ``function`` on a daemon thread; await its result on the loop.

    Unlike ``asyncio.to_thread``, a call that blocks for long never holds up the end of
    ``asyncio.run`` or of the process.
    """
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()
    threading.Thread(target=_settle_from_thread, args=(loop, result, function),
                     daemon=True).start()
    return result


def _settle_from_thread(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future, compute: Callable[[], object]
) -> None:
    """From any thread: settle ``future`` on ``loop`` with ``compute()``'s value or error."""
    try:
        value, error = compute(), None
    except Exception as exc:
        value, error = None, exc
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (the run ended)
        loop.call_soon_threadsafe(_settle, future, value, error)


def _settle(future: asyncio.Future, value: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
