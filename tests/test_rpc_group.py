"""The agent's rendezvous and RPC endpoint: bound to one address, honours the start timeout,
sleeps while idle; an observer's join says when no agent is there or it went away."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from common.rpc_group import RENDEZVOUS_SCHEME, JoinFailed, free_port, join_group
from common.spec import Spec

REPO = Path(__file__).resolve().parents[1]


def test_rendezvous_gives_up_after_the_start_timeout() -> None:
    port = free_port("127.0.0.1")
    start = time.monotonic()
    with pytest.raises(dist.DistStoreError):
        next(dist.rendezvous(f"{RENDEZVOUS_SCHEME}://127.0.0.1:{port}?timeout_s=1",
                             rank=0, world_size=2))
    assert time.monotonic() - start < 30  # torch's own default would be 5 minutes


def test_single_process_rendezvous_serves_a_store() -> None:
    port = free_port("127.0.0.1")
    store, rank, world_size = next(dist.rendezvous(
        f"{RENDEZVOUS_SCHEME}://127.0.0.1:{port}?timeout_s=5", rank=0, world_size=1))
    store.set("k", "v")
    assert (rank, world_size, store.get("k")) == (0, 1, b"v")


IDLE_ENDPOINT = """
import sys, time
import torch.distributed.rpc as rpc
from common import rpc_group
from common.rpc_group import free_port
rpc_group.start_group("127.0.0.1", free_port("127.0.0.1"), 30, sys.argv[1])
time.sleep(1.0)
start = time.process_time()
time.sleep(2.0)
print((time.process_time() - start) / 2.0)
rpc.shutdown(graceful=False)
"""


def idle_cpu_cores(*transports: str) -> list[float]:
    """Cores an agent endpoint with nothing to do burns, with each of ``transports`` (the
    endpoints side by side: each measures its own process's CPU time)."""
    endpoints = [subprocess.Popen([sys.executable, "-c", IDLE_ENDPOINT, transport], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for transport in transports]
    cores = []
    for endpoint in endpoints:
        stdout, stderr = endpoint.communicate(timeout=120)
        assert endpoint.returncode == 0, stderr[-2000:]
        cores.append(float(stdout.split()[-1]))
    return cores


@pytest.mark.timing
def test_an_idle_rpc_endpoint_sleeps_with_the_default_transport() -> None:
    """The default (uv) blocks while idle; shared memory (shm) busy-polls, which is what
    made it the wrong default on 2 cores."""
    assert Spec.model_fields["distributed"].default.transport == "uv"
    uv, shm = idle_cpu_cores("uv", "shm")
    assert uv < 0.05
    assert shm > 0.1


SLOW_JOINER = """
import sys, time
import torch.distributed.rpc as rpc
from torch.distributed.rpc import backend_registry
from common import rpc_group

register_everywhere = backend_registry._set_devices_and_reverse_device_map


def register_then_stall(agent):
    register_everywhere(agent)  # the agent has registered this observer by now
    time.sleep(3.0)  # ...but the join is not finished (a loaded machine, a slow network)


backend_registry._set_devices_and_reverse_device_map = register_then_stall
rpc_group.join_group("observer1", "127.0.0.1", int(sys.argv[1]), 30)
time.sleep(5.0)
rpc.shutdown(graceful=False)
"""

AGENT_WATCHING_A_SLOW_JOIN = """
import operator, subprocess, sys, time
import torch.distributed.rpc as rpc
from torch.distributed.rpc import api
from common import rpc_group
from common.rpc_group import free_port

port = free_port("127.0.0.1")
rpc_group.start_group("127.0.0.1", port, 30)
joiner = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(port)])
registered = lambda: {i.name for i in api._get_current_rpc_agent().get_worker_infos()}
deadline = time.monotonic() + 60
while "observer1" not in registered() and time.monotonic() < deadline:
    time.sleep(0.01)
print("registered" if "observer1" in registered() else "never registered",
      sorted(rpc_group.members()))
rpc_group.wait_for_members(["observer1"], 30, lambda: joiner.poll() is not None)
print("joined", sorted(rpc_group.members()), rpc.rpc_sync("observer1", operator.add, (1, 2)))
joiner.wait(60)
rpc.shutdown(graceful=False)
"""


@pytest.mark.slow
def test_an_observer_counts_as_a_member_once_its_join_has_finished() -> None:
    """A joiner torch has registered but whose join is still under way is not sent work
    yet (its address may be unknown here); once its join finishes, it is used."""
    result = subprocess.run([sys.executable, "-c", AGENT_WATCHING_A_SLOW_JOIN, SLOW_JOINER],
                            cwd=REPO, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "registered ['agent']", "joined ['agent', 'observer1'] 3"], result.stdout


AGENT_STORE_THAT_GOES_AWAY = """
import sys, time
import torch.distributed as dist
from common.rpc_group import FINGERPRINT_KEY, MEMBERS_KEY, RPC_STORE_PREFIX
store = dist.TCPStore("127.0.0.1", int(sys.argv[1]), is_master=True, wait_for_workers=False)
rpc_view = dist.PrefixStore(RPC_STORE_PREFIX, store)
rpc_view.set(FINGERPRINT_KEY, "{}")
rpc_view.set(MEMBERS_KEY, "agent-0,observer1-1,")  # observer1 still listed: a joiner waits
print("up", flush=True)
time.sleep(2.0)
"""


def test_an_observer_waiting_for_its_name_says_the_agent_went_away() -> None:
    """The agent's store closes while an observer waits for its rank to be free: a
    JoinFailed naming the agent, at once, not a store error after the start timeout."""
    port = free_port("127.0.0.1")
    agent = subprocess.Popen([sys.executable, "-c", AGENT_STORE_THAT_GOES_AWAY, str(port)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([agent.stdout], [], [], 60)[0], "the store never came up"
        assert agent.stdout.readline().strip() == "up"
        start = time.monotonic()
        with pytest.raises(JoinFailed, match=f"the agent at 127.0.0.1:{port} went away"):
            join_group("observer1", "127.0.0.1", port, timeout_s=60)
        assert time.monotonic() - start < 30
    finally:
        agent.kill()
        agent.wait(30)


def test_an_observer_with_no_agent_exits_1_with_one_line() -> None:
    """No agent within the start timeout: status 1 and one line naming the address, no
    Python traceback and none of torch's C++ connect-retry logs."""
    port = free_port("127.0.0.1")
    result = subprocess.run(
        [sys.executable, "main.py", "--spec", "specs/fetch_reach.yaml", "--role", "observer",
         "--master", f"127.0.0.1:{port}", "--world-size", "2", "--rank", "1",
         "--set", "distributed.start_timeout_s=2"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"error: observer1: no agent answered at 127.0.0.1:{port} within 2 s ("), lines[-1]
    assert not [line for line in lines if line.startswith(("Traceback", "[W", "[E", "frame #"))]


def test_an_observer_at_a_store_that_is_no_agent_says_so() -> None:
    """Something listens but never publishes an agent's group: JoinFailed after the
    timeout, not "went away"."""
    port = free_port("127.0.0.1")
    store = dist.TCPStore("127.0.0.1", port, is_master=True, wait_for_workers=False)
    with pytest.raises(JoinFailed, match=f"no fetch_mt agent at 127.0.0.1:{port}"):
        join_group("observer1", "127.0.0.1", port, timeout_s=2)
    del store
