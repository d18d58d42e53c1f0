"""Online evaluation: noise-free episodes of every task on the current weights, split over
the live observers, one ``eval`` record per task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from agent.report.metrics import MetricsPipeline
from agent.run.observer_pool import Clock, ObserverPool
from agent.run.run_signals import RunError, RunSignals
from agent.run.schedule import next_multiple
from agent.run.task_mix import TaskMix
from common.messages import Order, OrderResult, PolicySnapshot
from common.spec import Spec

EVAL_SEED_OFFSET = 1_000_003
"""Evaluation orders are seeded apart from collection: the same goals at every evaluation."""


class OnlineEvaluator:
    """Evaluates the weights of the moment; the principal decides when."""

    def __init__(self, spec: Spec, pool: ObserverPool, signals: RunSignals,
                 metrics: MetricsPipeline, task_mix: TaskMix, clock: Clock,
                 snapshot: Callable[[], PolicySnapshot],
                 next_order_id: Callable[[], int]) -> None:
        self.spec, self.pool, self.signals, self.metrics = spec, pool, signals, metrics
        self.task_mix, self._clock = task_mix, clock
        self._snapshot, self._next_order_id = snapshot, next_order_id
        self.tasks = list(spec.tasks)
        self.next_eval = spec.eval.every_env_steps
        """Total env steps at which the next evaluation is due (checkpointed)."""
        self.last_evaluated: tuple[int, int] | None = None
        """``(env_steps, updates)`` of the last evaluation."""

    async def evaluate(self) -> None:
        """``eval.episodes`` noise-free episodes per task once an observer is live; a record
        per task. The next evaluation is due at the next multiple of ``eval.every_env_steps``
        after the env steps of this one."""
        await self.signals.wait_until(lambda: self.signals.stopping or bool(self.pool.live()))
        if self.signals.stopping:
            return
        snapshot = self._snapshot()
        env_steps, wall = self._clock()
        self.next_eval = next_multiple(env_steps, self.spec.eval.every_env_steps)
        since_last = self.task_mix.eval_fields()
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
        counters = {"env_steps": env_steps, "wall_time_s": round(wall, 3),
                    "updates": snapshot.version}
        rates = {task: float(np.concatenate(successes[task]).mean()) for task in self.tasks}
        for task in self.tasks:
            await self.metrics.emit_reliable({
                "event": "eval",
                "task": task,
                **counters,
                "success_rate": rates[task],
                "episodes": int(sum(len(s) for s in successes[task])),
                **since_last[task],
            })
        if len(self.tasks) > 1:
            await self.metrics.emit_reliable({
                "event": "eval_mean", **counters,
                "success_rate": float(np.mean(list(rates.values()))), "tasks": len(rates),
            })
        self.last_evaluated = (env_steps, snapshot.version)

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

