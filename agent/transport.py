"""Agent ⇄ observer transport: one interface, torch RPC (TensorPipe) as the implementation."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlparse

import torch.distributed as dist
import torch.distributed.rpc as rpc
from torch.distributed.rendezvous import register_rendezvous_handler

from agent.netif import pin_interfaces
from observer.messages import Order, OrderResult

AGENT_NAME = "agent"

# init_rpc's internal barrier uses a Gloo group the deprecated way; nothing for users to do.
warnings.filterwarnings("ignore", message="You are using a Backend", category=UserWarning)


@dataclass(frozen=True)
class Endpoint:
    """Where the agent's RPC rendezvous listens, and how many processes join it."""

    addr: str
    port: int
    world_size: int


def observer_name(rank: int) -> str:
    """RPC name of the observer at ``rank`` (ranks start at 1; the agent is rank 0)."""
    return f"observer{rank}"


def free_port(addr: str) -> int:
    """A TCP port that is free on ``addr`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((addr, 0))
        return sock.getsockname()[1]


RENDEZVOUS_SCHEME = "boundtcp"


def _bound_tcp_rendezvous(url: str, timeout: timedelta = timedelta(minutes=5), **_):
    """Like ``tcp://``, but rank 0's store listens on the given address only.

    torch's own ``tcp://`` store listens on every interface; handing it a socket bound to
    ``addr:port`` keeps the agent reachable only where the user said.
    """
    parsed = urlparse(url)
    query = dict(item.split("=", 1) for item in parsed.query.split("&") if item)
    rank, world_size = int(query["rank"]), int(query["world_size"])
    if "timeout_s" in query:  # torch passes no timeout to handlers: we carry our own
        timeout = timedelta(seconds=float(query["timeout_s"]))
    listen_fd = None
    if rank == 0:
        listener = socket.create_server((parsed.hostname, parsed.port), backlog=128)
        listen_fd = listener.detach()  # the store owns (and closes) the descriptor now
    try:
        store = dist.TCPStore(
            parsed.hostname, parsed.port, world_size, rank == 0, timeout,
            multi_tenant=True, master_listen_fd=listen_fd,
        )
    except BaseException:
        if listen_fd is not None:
            os.close(listen_fd)
        raise
    yield store, rank, world_size
    raise RuntimeError(f"{RENDEZVOUS_SCHEME}:// cannot re-rendezvous")


register_rendezvous_handler(RENDEZVOUS_SCHEME, _bound_tcp_rendezvous)


def rpc_options(addr: str, port: int, timeout_s: float) -> rpc.TensorPipeRpcBackendOptions:
    """TensorPipe options rendezvousing at ``addr:port`` over the interface that reaches it."""
    pin_interfaces(addr)
    return rpc.TensorPipeRpcBackendOptions(
        init_method=f"{RENDEZVOUS_SCHEME}://{addr}:{port}?timeout_s={timeout_s}",
        rpc_timeout=timeout_s,
        num_worker_threads=8,
    )


class Transport(Protocol):
    """Sends an order to a named observer; the reply arrives as an asyncio future."""

    def submit(self, observer: str, order: Order) -> asyncio.Future[OrderResult]: ...


class RpcTransport:
    """``rpc_async`` to ``observer.worker.serve_order``, bridged into the running event loop."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s

    def submit(self, observer: str, order: Order) -> asyncio.Future[OrderResult]:
        from observer.worker import serve_order

        loop = asyncio.get_running_loop()
        result: asyncio.Future[OrderResult] = loop.create_future()
        reply = rpc.rpc_async(observer, serve_order, args=(order,), timeout=self.timeout_s)

        def deliver(fut) -> None:
            try:
                value, error = fut.wait(), None
            except Exception as exc:  # the remote error or a timeout, re-raised on the loop
                value, error = None, exc
            # the loop is closed if the run ended while this order was in flight
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, result, value, error)

        reply.add_done_callback(deliver)
        return result


def _settle(future: asyncio.Future, value: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
