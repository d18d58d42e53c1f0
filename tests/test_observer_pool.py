"""The observer pool through its public interface: fair turns, losing and readmitting."""

from __future__ import annotations

import asyncio

import pytest

import agent.run.observer_pool as observer_pool
from agent.report.metrics import MetricsPipeline
from agent.run.observer_pool import ObserverPool
from agent.run.run_signals import RunError, RunSignals
from agent.run.schedule import crossed, next_multiple
from common.messages import Order, OrderResult
from tests.conftest import ListSink


class FakeTransport:
    """``A`` answers; ``B`` fails until a replacement joins (``members`` lists it again)."""

    def __init__(self) -> None:
        self.forgotten: set[str] = set()

    async def _reply(self, observer: str, order: Order) -> OrderResult:
        if observer == "B" and "B" not in self.forgotten and not self.rejoined:
            raise ConnectionError("B died")
        return OrderResult(order.order_id, observer)

    rejoined = False

    def submit(self, observer: str, order: Order) -> asyncio.Future:
        return asyncio.ensure_future(self._reply(observer, order))

    def members(self) -> set[str]:
        return {"A", "B"} if self.rejoined else {"A"}

    def forget(self, observer: str) -> None:
        self.forgotten.add(observer)


def make_pool(replace: bool = False) -> tuple[ObserverPool, FakeTransport, ListSink]:
    sink, transport = ListSink(), FakeTransport()
    pool = ObserverPool(["A", "B"], transport, MetricsPipeline([sink], 100), RunSignals(),
                        clock=lambda: (1234, 5.0),
                        replace_observer=(lambda name: True) if replace else None)
    return pool, transport, sink


def test_turns_go_to_the_free_observer_with_fewest_orders_then_the_longest_waiting() -> None:
    pool, _, _ = make_pool()
    pool.slots.update(A=2, B=2)
    assert pool.turn_of("A") and not pool.turn_of("B")  # a tie: A was listed first
    pool.dispatching("A")
    assert pool.turn_of("B")
    pool.dispatching("B")
    assert pool.turn_of("A")  # both have one out: A's last order is older
    pool.dispatching("A")
    pool.dispatching("B")
    assert not pool.turn_of("A") and not pool.turn_of("B")  # no free slot


def test_a_failed_order_loses_its_observer_once_and_records_it() -> None:
    async def scenario() -> tuple[ObserverPool, list[dict]]:
        pool, _, sink = make_pool()
        pool.metrics.start()
        assert await pool.submit("B", Order(1, [], True, 0)) is None
        await asyncio.sleep(0)  # the background drop runs
        assert await pool.submit("A", Order(2, [], True, 0)) is not None
        await pool.metrics.close()
        return pool, sink.records

    pool, records = asyncio.run(scenario())
    assert pool.lost == ["B"] and pool.live() == ["A"] and pool.losses == 1
    assert records == [{"event": "observer_lost", "observer": "B", "env_steps": 1234,
                        "wall_time_s": 5.0, "episodes": 0}]


def test_losing_the_last_observer_without_replacements_is_a_run_error() -> None:
    async def scenario() -> None:
        pool, _, _ = make_pool()
        pool.lose("A", ConnectionError("gone"))
        with pytest.raises(RunError, match="every observer is lost"):
            pool.lose("B", ConnectionError("gone"))
        await asyncio.sleep(0.01)  # the background drops run

    asyncio.run(scenario())


def test_a_replacement_is_admitted_and_given_slots_once_it_joined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(observer_pool, "REJOIN_POLL_S", 0.01)
    started: list[str] = []

    async def scenario() -> ObserverPool:
        pool, transport, _ = make_pool(replace=True)
        await pool.submit("B", Order(1, [], True, 0))
        watcher = asyncio.create_task(pool.admit_replacements(started.append, 2, 60))
        for _ in range(5):  # several polls of the watcher
            await asyncio.sleep(observer_pool.REJOIN_POLL_S)
        assert pool.lost == ["B"] and started == []  # not back in the group yet
        transport.rejoined = True
        while not started:  # admitted at one of the next polls
            await asyncio.sleep(observer_pool.REJOIN_POLL_S)
        watcher.cancel()
        return pool

    pool = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert pool.lost == [] and pool.rejoined == 1 and started == ["B", "B"]


def test_interval_helpers() -> None:
    assert next_multiple(0, 5) == 5 and next_multiple(5, 5) == 10 and next_multiple(7, 5) == 10
    assert crossed(4, 5, 5) and crossed(4, 11, 5) and not crossed(5, 9, 5)
