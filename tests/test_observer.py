"""The observer's collection thread: how it runs the policy."""

from __future__ import annotations

import os

import numpy as np
import torch

from common.messages import Order, PolicySnapshot
from common.spec import validate_spec
from observer.rollout import explore
from observer.worker import ObserverService


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_collection_thread_starts_no_torch_worker_threads() -> None:
    """OpenMP keeps its team size per thread: a collection thread that does not set its own
    runs the policy forward on a team with one worker per core, and the idle worker spins
    (0.4 core per observer on the 2-core box: docs/benchmarks.md)."""
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


def _reach_service() -> ObserverService:
    spec = validate_spec({"tasks": ["FetchReach-v4"], "budget": {"env_steps": 100},
                          "learner": {"hidden_sizes": [8]}}, "test")
    return ObserverService(spec, "observer1")


def _snapshot(service: ObserverService, version: int, fill: float) -> PolicySnapshot:
    actor = {k: torch.full_like(v, fill) for k, v in service.policy.actor.state_dict().items()}
    return PolicySnapshot(version, actor, service.policy.encoder.state_dict())


def test_an_order_never_takes_the_policy_back_to_an_older_snapshot() -> None:
    """RPC replies and orders can arrive out of order: a late order with older weights
    must not undo newer ones."""
    service = _reach_service()
    try:
        def first_weight() -> float:
            return float(next(iter(service.policy.actor.parameters())).flatten()[0])

        for version, fill, expected in ((5, 0.5, 0.5), (3, -0.25, 0.5), (5, 0.125, 0.125),
                                        (8, 0.75, 0.75)):
            snapshot = _snapshot(service, version, fill)
            result = service.run(Order(version, [("FetchReach-v4", 1)], False, 0, snapshot))
            assert first_weight() == expected, version
            assert result.batches[0].policy_version == service.policy.version
        assert service.policy.version == 8
    finally:
        service.close()


def test_noise_free_orders_act_deterministically_and_exploring_ones_do_not() -> None:
    service = _reach_service()
    try:
        def actions(explore: bool, seed: int) -> np.ndarray:
            order = Order(0, [("FetchReach-v4", 2)], explore, seed)
            return service.run(order).batches[0].action

        assert np.array_equal(actions(False, 1), actions(False, 1))
        assert np.array_equal(actions(True, 1), actions(True, 1))  # the order's seed decides
        assert not np.allclose(actions(True, 1), actions(False, 1))
    finally:
        service.close()


def test_exploration_adds_bounded_noise_and_some_uniform_rows() -> None:
    rng = np.random.default_rng(0)
    base = np.zeros((10_000, 4), np.float32)
    noisy = explore(base, rng, noise_std=0.2, random_eps=0.0)
    assert np.all(np.abs(noisy) <= 1.0) and abs(float(noisy.std()) - 0.2) < 0.01
    mixed = explore(base, rng, noise_std=0.0, random_eps=0.3)
    random_rows = np.any(mixed != 0, axis=1).mean()
    assert abs(random_rows - 0.3) < 0.02


def test_grasped_starts_are_drawn_for_exploring_pick_and_place_episodes_only() -> None:
    spec = validate_spec({"tasks": ["FetchPickAndPlace-v4"], "budget": {"env_steps": 100},
                          "collect": {"grasped_start_share": {"FetchPickAndPlace-v4": 1.0}}},
                         "test")
    service = ObserverService(spec, "observer-0")
    try:
        def first_gap(explore: bool) -> np.ndarray:
            batch = service.run(Order(0, [("FetchPickAndPlace-v4", 2)], explore, 3)).batches[0]
            return np.linalg.norm(batch.obs[:, 0, 3:6] - batch.obs[:, 0, :3], axis=-1)

        assert (first_gap(True) < 1e-5).all()  # every exploring episode starts grasped
        assert (first_gap(False) > 0.05).all()  # noise-free ones (and evaluations) never do
    finally:
        service.close()
