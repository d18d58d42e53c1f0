"""Who is in the run: a dynamic torch RPC group that observers join, leave and rejoin.

A static group (``init_rpc`` with a world size) fixes its members at start-up, so a
replacement for a dead observer could never join. Here every process joins a dynamic
group (``world_size=None``): the agent starts it, observers join whenever they come up,
and when the agent drops a lost observer it also removes it from the group, so a
replacement with the same rank (the same name) can join later.

Names carry the observer's rank (``observer<R>``); RPC worker ids are handed out by the
agent's store, one per process ever started, because TensorPipe keeps its connection to
a dead process under the old id. Details of torch's dynamic groups live here and only
here: the member list's and join token's store keys, that a failed join leaves the join
token taken (so a joiner waits until its name is free and cleans up after a failure), and
that a finished join leaves its token key behind (which would make the next joiner of the
same name spin instead of wait, so it is deleted first).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

import torch.distributed as dist
import torch.distributed.rpc as rpc
from torch.distributed.rendezvous import register_rendezvous_handler
from torch.distributed.rpc import api
from torch.distributed.rpc._utils import _group_membership_management

from common.errors import first_line
from common.fingerprint import differences
from common.netif import pin_interfaces

AGENT_NAME = "agent"


@dataclass(frozen=True)
class Endpoint:
    """Where the agent's RPC rendezvous listens, and how many processes join it."""

    addr: str
    port: int
    world_size: int


OBSERVER_PREFIX = "observer"


def observer_name(rank: int) -> str:
    """RPC name of the observer at ``rank`` (ranks start at 1; the agent is rank 0)."""
    return f"{OBSERVER_PREFIX}{rank}"


def observer_rank(name: str) -> int:
    """The rank in an observer's RPC name."""
    return int(name.removeprefix(OBSERVER_PREFIX))


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
    rank, world_size = int(query["rank"]), int(query["world_size"])  # -1: a dynamic group
    if "timeout_s" in query:  # torch passes no timeout to handlers: we carry our own
        timeout = timedelta(seconds=float(query["timeout_s"]))
    listen_fd = None
    if rank == 0:
        listener = socket.create_server((parsed.hostname, parsed.port), backlog=128)
        listen_fd = listener.detach()  # the store owns (and closes) the descriptor now
    try:
        store = dist.TCPStore(
            parsed.hostname, parsed.port, world_size if world_size > 0 else None, rank == 0,
            timeout, multi_tenant=True, master_listen_fd=listen_fd,
        )
    except BaseException:
        if listen_fd is not None:  # unless the store owned and closed it already
            with contextlib.suppress(OSError):
                os.close(listen_fd)
        raise
    yield store, rank, world_size
    raise RuntimeError(f"{RENDEZVOUS_SCHEME}:// cannot re-rendezvous")


register_rendezvous_handler(RENDEZVOUS_SCHEME, _bound_tcp_rendezvous)


TRANSPORTS = {"uv": ["uv"], "shm": ["shm", "uv"]}
"""TensorPipe transports per ``distributed.transport``: libuv TCP blocks in epoll while idle;
shared memory (same host only, uv across hosts) busy-polls in its reactor threads."""


def rpc_options(
    addr: str, port: int, timeout_s: float, transport: str = "uv"
) -> rpc.TensorPipeRpcBackendOptions:
    """TensorPipe options rendezvousing at ``addr:port`` over the interface that reaches it."""
    pin_interfaces(addr)
    return rpc.TensorPipeRpcBackendOptions(
        init_method=f"{RENDEZVOUS_SCHEME}://{addr}:{port}?timeout_s={timeout_s}",
        rpc_timeout=timeout_s,
        num_worker_threads=8,
        _transports=TRANSPORTS[transport],
    )


AGENT_ID = 0
WORKER_IDS_KEY = "fetch_mt/worker_ids"
"""Store counter handing out RPC worker ids (agent 0, observers from 1)."""
MEMBERS_KEY = "names/_ALL_WORKER_INFOS"
"""torch's member list of a dynamic group ("name-id," per member), relative to the RPC store."""
RPC_STORE_PREFIX = "rpc_prefix_0"
"""The prefix torch gives the store of the first (here: only) ``init_rpc`` of a process."""


TOKEN_KEY = "RpcGroupManagementToken"
"""Held by whoever is joining, leaving or being forgotten (torch's ``_utils``)."""


class NameTaken(RuntimeError):
    """An observer with this rank is still a member of the run."""


class JoinFailed(RuntimeError):
    """The agent's group could not take this observer in."""


class Refused(RuntimeError):
    """The agent runs other code or another spec than this observer (it did not join)."""


FINGERPRINT_KEY = "fetch_mt_fingerprint"
"""The agent's :func:`common.fingerprint.fingerprint` (JSON), relative to the RPC store."""


def _parse_members(text: str) -> dict[str, int]:
    entries = [entry.rsplit("-", 1) for entry in text.split(",") if entry]
    return {name: int(worker_id) for name, worker_id in entries}


def _format_members(members: dict[str, int]) -> str:
    return "".join(f"{name}-{worker_id}," for name, worker_id in members.items())


def start_group(addr: str, port: int, timeout_s: float, transport: str = "uv",
                fingerprint: dict[str, str] | None = None) -> None:
    """Be the agent: start the group (and its store) at ``addr:port``, publishing the
    ``fingerprint`` joining observers must match."""
    rpc.init_rpc(AGENT_NAME, rank=AGENT_ID, world_size=None,
                 rpc_backend_options=rpc_options(addr, port, timeout_s, transport))
    api._get_current_rpc_agent().store.set(FINGERPRINT_KEY, json.dumps(fingerprint or {}))


def join_group(name: str, addr: str, port: int, timeout_s: float, transport: str = "uv",
               fingerprint: dict[str, str] | None = None) -> int:
    """Be an observer: join the agent's group as ``name``; returns this process's worker id.

    Waits up to ``timeout_s`` for the agent to come up and for ``name`` to be free (the
    agent drops a lost observer once it notices). Raises :class:`Refused` if the agent's
    fingerprint differs from ``fingerprint``, :class:`NameTaken` if another process is
    still a member under ``name``, :class:`JoinFailed` if no agent answers, it goes away
    while this process waits, or the join fails.
    """
    where = f"{addr}:{port}"
    if (refusal := _unreachable(addr, port, timeout_s)) is not None:
        raise JoinFailed(f"{name}: no agent answered at {where} within {timeout_s:g} s "
                         f"({refusal})")
    try:
        store = dist.TCPStore(addr, port, is_master=False, timeout=timedelta(seconds=timeout_s))
        prefixed = _claim_name(store, name, where, timeout_s, fingerprint)
        worker_id = store.add(WORKER_IDS_KEY, 1)
    except dist.DistStoreError as exc:  # a store that never published an agent's group
        raise JoinFailed(f"{name}: no fetch_mt agent at {where} ({first_line(exc)})") from None
    except dist.DistError as exc:
        raise JoinFailed(f"{name}: the agent at {where} went away before this observer "
                         f"joined ({first_line(exc)})") from None
    try:
        rpc.init_rpc(name, rank=worker_id, world_size=None,
                     rpc_backend_options=rpc_options(addr, port, timeout_s, transport))
    except Exception as exc:
        with contextlib.suppress(dist.DistError):  # the agent may be gone as well
            _undo_failed_join(prefixed, name, worker_id)
        if "is not unique" in str(exc):
            raise NameTaken(f"{name} joined the run at {where} from another process "
                            "at the same time") from None
        raise JoinFailed(f"{name} could not join the run at {where} (is another observer "
                         f"dead but not yet dropped?): {first_line(exc)}") from None
    return worker_id


def _unreachable(addr: str, port: int, timeout_s: float) -> str | None:
    """None once something accepts connections at ``addr:port``, or after ``timeout_s`` the
    last connection error. Probed here so that torch's store client, which logs every failed
    try with its C++ frames, connects only once the agent is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            left = deadline - time.monotonic()
            with socket.create_connection((addr, port), timeout=min(2.0, max(0.1, left))):
                return None
        except OSError as exc:
            if time.monotonic() >= deadline:
                return str(exc) or type(exc).__name__
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def _claim_name(store: dist.TCPStore, name: str, where: str, timeout_s: float,
                fingerprint: dict[str, str] | None) -> dist.PrefixStore:
    """Check the agent's fingerprint and wait until ``name`` is free in its ``store``; the
    store's RPC view. Store errors (the agent went away) propagate."""
    prefixed = dist.PrefixStore(RPC_STORE_PREFIX, store)
    prefixed.wait([MEMBERS_KEY, FINGERPRINT_KEY])  # written by the agent's start_group
    theirs = json.loads(prefixed.get(FINGERPRINT_KEY).decode())
    if fingerprint is not None and (differ := differences(theirs, fingerprint)):
        raise Refused(f"{name} refused by the agent at {where}: " + "; ".join(differ))
    deadline = time.monotonic() + timeout_s
    while name in _parse_members(prefixed.get(MEMBERS_KEY).decode()):
        if time.monotonic() > deadline:
            raise NameTaken(f"{name} is still a member of the run at {where} after "
                            f"{timeout_s:.0f} s; is an observer of this rank still running?")
        time.sleep(0.5)
    prefixed.delete_key(_join_token(name))
    return prefixed


def _join_token(name: str) -> str:
    return f"Token_for_{name}_join"


def _undo_failed_join(store: dist.Store, name: str, worker_id: int) -> None:
    """Take ``name`` off the member list and free the join token it still holds."""
    listed = _parse_members(store.get(MEMBERS_KEY).decode())
    if listed.get(name) == worker_id:
        del listed[name]
        store.set(MEMBERS_KEY, _format_members(listed))
    store.compare_set(TOKEN_KEY, _join_token(name), "")
    store.set(_join_token(name), "Done")  # wake anyone waiting for the token


def members() -> set[str]:
    """Names of the members whose join has finished, as this process sees them.

    torch lists a joiner here as soon as it registers with this process, before this
    process has read the joiner's address (a send in between fails: "could not find
    destination url"). A join has finished once its token key is back in the store, which
    the joiner writes after every member has registered it.
    """
    agent = api._get_current_rpc_agent()
    listed = {info.name for info in agent.get_worker_infos()}
    return {name for name in listed if agent.store.check([_join_token(name)])}


def wait_for_members(names: list[str], timeout_s: float, gave_up: Callable[[], bool]) -> None:
    """Block until every one of ``names`` has joined; TimeoutError after ``timeout_s``
    or as soon as ``gave_up()`` says none will come (e.g. local observers exited)."""
    deadline = time.monotonic() + timeout_s
    while missing := set(names) - members():
        if time.monotonic() > deadline or gave_up():
            raise TimeoutError(f"not joined: {', '.join(sorted(missing))}")
        time.sleep(0.05)


def forget(name: str) -> None:
    """Agent side: remove ``name`` from the group (its store entry and the agent's view),
    so that a replacement can join under the same name. Blocks while a join is under way."""
    agent = api._get_current_rpc_agent()
    info = next((w for w in agent.get_worker_infos() if w.name == name), None)
    if info is None:
        return
    with _group_membership_management(agent.store, f"{AGENT_NAME}-forgets-{name}", False):
        listed = _parse_members(agent.store.get(MEMBERS_KEY).decode())
        listed.pop(name, None)
        agent.store.set(MEMBERS_KEY, _format_members(listed))
        agent._update_group_membership(info, [], {}, False)


def is_member(name: str, worker_id: int) -> bool:
    """Runs on the agent for an observer's liveness check: is it still in the run?"""
    infos = api._get_current_rpc_agent().get_worker_infos()
    return any(info.name == name and info.id == worker_id for info in infos)


def stop_members(stop: Callable[[], None], timeout_s: float) -> None:
    """Agent side: ask every current observer to leave (errors ignored: a peer may
    already be gone, or leave before its reply is sent)."""
    futures = [rpc.rpc_async(name, stop, timeout=timeout_s)
               for name in members() - {AGENT_NAME}]
    deadline = time.monotonic() + timeout_s
    for future in futures:
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
