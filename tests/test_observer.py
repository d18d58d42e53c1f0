"""The observer's collection thread: how it runs the policy."""

from __future__ import annotations

import os

import torch

from agent.spec import validate_spec
from observer.worker import ObserverService


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_collection_thread_starts_no_torch_worker_threads() -> None:
    """OpenMP keeps its team size per thread: a collection thread that does not set its own
    runs the policy forward on a team with one worker per core, and the idle worker spins
    (0.4 core per observer on the 2-core box: README, Benchmarks)."""
    spec = validate_spec({"tasks": ["FetchReach-v4"], "budget": {"env_steps": 100}}, "test")
    torch.set_num_threads(1)  # as run_observer does, on the main thread only
    service = ObserverService(spec, "observer1")
    actor = service.policy.actor
    rows = torch.zeros(2, actor.net[0].in_features)
    try:
        before = _threads()
        service.run = lambda order: [actor(rows) for _ in range(100)]  # type: ignore[method-assign]
        service.submit(None).wait()  # type: ignore[arg-type]
        assert _threads() == before
    finally:
        service.close()
