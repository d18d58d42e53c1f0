"""The agent's rendezvous and RPC endpoint: bound to one address, honours the start timeout,
sleeps while idle."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from agent.rpc_group import RENDEZVOUS_SCHEME, free_port
from agent.spec import Spec

REPO = Path(__file__).resolve().parents[1]


def test_rendezvous_gives_up_after_the_start_timeout() -> None:
    port = free_port("127.0.0.1")
    start = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 (torch raises a store-specific error type)
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
from agent import rpc_group
from agent.rpc_group import free_port
rpc_group.start_group("127.0.0.1", free_port("127.0.0.1"), 30, sys.argv[1])
time.sleep(1.0)
start = time.process_time()
time.sleep(2.0)
print((time.process_time() - start) / 2.0)
rpc.shutdown(graceful=False)
"""


def idle_cpu_cores(transport: str) -> float:
    """Cores an agent endpoint with nothing to do burns, with ``transport``."""
    result = subprocess.run([sys.executable, "-c", IDLE_ENDPOINT, transport], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return float(result.stdout.split()[-1])


def test_an_idle_rpc_endpoint_sleeps_with_the_default_transport() -> None:
    """The default (uv) blocks while idle; shared memory (shm) busy-polls, which is what
    made it the wrong default on 2 cores."""
    assert Spec.model_fields["distributed"].default.transport == "uv"
    assert idle_cpu_cores("uv") < 0.05
    assert idle_cpu_cores("shm") > 0.1
