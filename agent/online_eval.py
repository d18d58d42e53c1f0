"""Online evaluation: noise-free episodes of every task on the current weights, split over
the live observers, one ``eval`` record per task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from agent.metrics import MetricsPipeline
from agent.observer_pool import Clock, ObserverPool
from agent.run_signals import RunError, RunSignals
from agent.strategies import TaskStrategies
from common.messages import Order, OrderResult, PolicySnapshot
from common.spec import Spec

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation orders are seeded apart from collection: the same goals at every evaluation."""


class OnlineEvaluator:
    """Evaluates the weights of the moment; the principal decides when."""

    def __init__(self, spec: Spec, pool: ObserverPool, signals: RunSignals,
                 metrics: MetricsPipeline, strategies: TaskStrategies, clock: Clock,
                 snapshot: Callable[[], PolicySnapshot],
                 next_order_id: Callable[[], int]) -> None:
        self.spec, self.pool, self.signals, self.metrics = spec, pool, signals, metrics
        self.strategies, self._clock = strategies, clock
        self._snapshot, self._next_order_id = snapshot, next_order_id
        self.tasks = list(spec.tasks)
        self.last_env_steps = -1
        """Total env steps of the last evaluation."""

    async def evaluate(self) -> None:
        """``eval.episodes`` noise-free episodes per task; a record per task."""
        await self.signals.wait_until(lambda: self.signals.stopping or bool(self.pool.live()))
        if self.signals.stopping:
            return
        snapshot = self._snapshot()
        env_steps, wall = self._clock()
        since_last = self.strategies.eval_fields()
        live = self.pool.live()
        replies = []
        for index, share in enumerate(np.array_split(np.arange(self.spec.eval.episodes),
                                                      len(live))):
            if len(share) == 0:
                continue
            order = Order(
                self._next_order_id(), [(t, len(share)) for t in self.tasks], False,
                self.spec.seed + EVAL_SEED_OFFSET + index, snapshot,
            )
            replies.append(self._evaluate_share(live[index], order))
        successes: dict[str, list[np.ndarray]] = {t: [] for t in self.tasks}
        for result in await asyncio.gather(*replies):
            for batch in result.batches:
                successes[batch.task].append(batch.success)
        for task in self.tasks:
            await self.metrics.emit_reliable({
                "event": "eval",
                "task": task,
                "env_steps": env_steps,
                "wall_time_s": round(wall, 3),
                "updates": snapshot.version,
                "success_rate": float(np.concatenate(successes[task]).mean()),
                "episodes": int(sum(len(s) for s in successes[task])),
                **since_last[task],
            })
        self.last_env_steps = env_steps

    async def _evaluate_share(self, observer: str, order: Order) -> OrderResult:
        """Run ``order`` on ``observer``, or on the next live observer if it is lost."""
        while True:
            self.pool.sent_version[observer] = order.policy.version if order.policy else -1
            result = await self.pool.submit(observer, order)
            if result is not None:
                return result
            await self.signals.wait_until(
                lambda: self.signals.stopping or bool(self.pool.live()))
            if not self.pool.live():
                raise RunError("no observer left to finish the evaluation")
            observer = self.pool.live()[0]

