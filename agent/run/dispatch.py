"""Dispatch: one coroutine per order slot keeps a collection order out at its observer
while the budget has room and the learner's pace allows; a lost observer's task lists go
to the others. Replies go on the episode queue with their env steps and whether they
were collected noise-free."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

import numpy as np

from agent.run.observer_pool import ObserverPool
from agent.run.run_signals import RunSignals
from agent.run.task_mix import TaskMix
from common.envs import TaskShape
from common.messages import Order, OrderResult, PolicySnapshot
from common.spec import Spec

EpisodeQueue = asyncio.Queue[tuple[OrderResult, int, bool] | None]
"""Replies on their way to replay: the result, its env steps, whether noise-free."""


class Dispatcher:
    """Decides what each observer collects next, and when."""

    def __init__(
        self,
        spec: Spec,
        shapes: list[TaskShape],
        pool: ObserverPool,
        signals: RunSignals,
        task_mix: TaskMix,
        rng: np.random.Generator,
        episodes: EpisodeQueue,
        stored_steps: Callable[[], int],
        learner_pace: Callable[[], float],
        snapshot: Callable[[], PolicySnapshot],
        next_order_id: Callable[[], int],
    ) -> None:
        self.spec, self.pool, self.signals, self.task_mix = spec, pool, signals, task_mix
        self.rng, self.episodes = rng, episodes
        self.horizon = {task: shape.horizon for task, shape in zip(spec.tasks, shapes,
                                                                   strict=True)}
        self._stored_steps, self._learner_pace = stored_steps, learner_pace
        """Env steps stored so far; env steps the learner has used up (or the warm-up)."""
        self._snapshot, self._next_order_id = snapshot, next_order_id
        self.pending_steps = 0
        """Env steps dispatched and not yet stored."""
        self._reassigned: deque[tuple[list[tuple[str, int]], bool]] = deque()
        """Task lists of orders a lost observer did not deliver."""
        self.slot_tasks: list[asyncio.Task] = []

    def _budget_left(self) -> int:
        return self.spec.budget.env_steps - self._stored_steps() - self.pending_steps

    def _episode_fits(self) -> bool:
        return self._budget_left() >= min(self.horizon.values())

    def finished(self) -> bool:
        """Nothing more will be collected: budget dispatched (or stopping) and all stored."""
        return (self.signals.stopping or not self._episode_fits()) and self.pending_steps == 0

    def _within_pace(self) -> bool:
        """Collection may run ``collect_ahead_env_steps`` ahead of the learner."""
        allowed = self._learner_pace() + self.spec.learner.collect_ahead_env_steps
        return self._stored_steps() + self.pending_steps < allowed

    def start_slot(self, observer: str) -> None:
        """One more order kept out at ``observer`` at a time."""
        self.slot_tasks.append(asyncio.create_task(self.signals.guard(self._slot(observer))))

    async def _slot(self, observer: str) -> None:
        """Keep one order outstanding at ``observer`` until the budget is dispatched."""
        self.pool.slots[observer] += 1
        try:
            await self._serve(observer)
        finally:
            self.pool.slots[observer] -= 1
            await self.signals.notify()  # another observer's turn now

    async def _serve(self, observer: str) -> None:
        while True:
            # Wait rather than exit when the budget is merely all dispatched: a lost
            # observer's steps can come back and must still be collected.
            await self.signals.wait_until(
                lambda: self.signals.stopping or self.finished()
                or (self._within_pace() and self._episode_fits() and self.pool.turn_of(observer))
            )
            if self.signals.stopping or self.finished() or observer in self.pool.lost:
                return
            order = self._next_order(observer)
            if order is None:
                return
            steps = sum(n * self.horizon[task] for task, n in order.tasks)
            self.pending_steps += steps
            self.pool.dispatching(observer)
            try:
                result = await self.pool.submit(observer, order)
            except BaseException:
                self.pending_steps -= steps
                raise
            finally:
                self.pool.in_flight[observer] -= 1
            if result is None:  # observer lost: its task list goes to the remaining ones
                self.pending_steps -= steps
                self._reassigned.append((order.tasks, order.explore))
                await self.signals.notify()
                return
            await self.episodes.put((result, steps, not order.explore))

    def _next_order(self, observer: str) -> Order | None:
        """The scheduler's task list clipped to the budget, with fresh weights if stale."""
        left = self._budget_left()
        tasks = []
        if self._reassigned:
            wanted, explore = self._reassigned.popleft()
        else:
            wanted, explore = self.task_mix.next_order(self.spec.collect.episodes_per_task,
                                                         self.rng)
        for task, n in wanted:
            n = min(n, left // self.horizon[task])
            if n > 0:
                tasks.append((task, n))
                left -= n * self.horizon[task]
        if not tasks:
            return None
        return Order(self._next_order_id(), tasks, explore, int(self.rng.integers(2**31 - 1)),
                     self._policy_for(observer))

    def _policy_for(self, observer: str) -> PolicySnapshot | None:
        """The current weights, unless ``observer`` has them already."""
        snapshot = self._snapshot()
        if self.pool.sent_version.get(observer, -1) >= snapshot.version:
            return None
        self.pool.sent_version[observer] = snapshot.version
        return snapshot
