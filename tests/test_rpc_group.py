"""The agent's rendezvous: bound to one address, honours the start timeout."""

from __future__ import annotations

import time

import pytest
import torch.distributed as dist

from agent.rpc_group import RENDEZVOUS_SCHEME, free_port


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
