"""The principal agent: wires the run's parts and drives them to the budget.

Its parts: the observer pool (agent/run/observer_pool.py: lost observers, replacements, fair
turns), dispatch (agent/run/dispatch.py: budget, pace, reassigned work), the updater
(agent/run/updater.py: local, MPI ranks or meta-update), online evaluation
(agent/run/online_eval.py) and the run's lifecycle (agent/run/run_signals.py). Here: ingest into
replay, learner pacing, the run's counters and persistence, and the loop that drives it.

Everything runs on one asyncio event loop. RPC replies arrive as asyncio futures and go
through a bounded queue into the per-task replays; the learner does one update at a time
and yields between updates, so collection and learning overlap. A rate limiter keeps the
update-to-data ratio: collection may run ``collect_ahead_env_steps`` ahead of the learner.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from agent.checkpoint import LATEST, restore_rng_state, rng_state, save_checkpoint
from agent.learn.build import build_batcher, build_learner
from agent.learn.task_signals import task_signals
from agent.ranks.gradient_averager import GradientAverager
from agent.ranks.learner_ranks import RankGroup, replay_root, shard_capacity
from agent.replay.replay_store import ReplayChunks
from agent.report.metrics import MetricsPipeline, Record
from agent.report.training_window import TrainingWindow
from agent.run.dispatch import Dispatcher, EpisodeQueue
from agent.run.ingest import EpisodeIngest
from agent.run.observer_pool import ObserverPool
from agent.run.online_eval import OnlineEvaluator
from agent.run.run_signals import RunError, RunSignals, describe
from agent.run.schedule import crossed, next_multiple
from agent.run.task_mix import TaskMix
from agent.run.training_videos import TrainingVideos
from agent.run.transport import Transport
from agent.run.updater import build_updater
from common.messages import PolicySnapshot
from common.policy import build_encoder, task_shapes
from common.spec import Spec


class Principal:
    """Owns learner, replays, normalizers and counters; drives observers through a transport."""

    def __init__(
        self,
        spec: Spec,
        run_dir: Path,
        transport: Transport,
        observers: Sequence[str],
        metrics: MetricsPipeline,
        group: RankGroup | None = None,
        replace_observer: Callable[[str], bool] | None = None,
    ) -> None:
        self.spec, self.run_dir, self.metrics = spec, run_dir, metrics
        self.group = group
        """The other MPI learner ranks, when started by mpiexec."""
        self.tasks = list(spec.tasks)
        self.shapes = task_shapes(self.tasks)
        torch.manual_seed(spec.seed)
        self.rng = np.random.default_rng(spec.seed)
        self.encoder = build_encoder(spec)
        self.learner = build_learner(
            spec, self.encoder, GradientAverager(group.comm) if group else None
        )
        capacity = spec.replay.capacity_per_task
        if group is not None:
            capacity = shard_capacity(capacity, group.size)
        self.batcher = build_batcher(spec, self.encoder, capacity, self.rng)
        self.replays = self.batcher.replays
        self.replay_chunks = [ReplayChunks(replay_root(run_dir, 0), t) for t in self.tasks]
        self.replay_episodes_by_rank: list[list[int]] | None = None
        """Replay counts of ranks 1..N-1 at the last checkpoint (MPI runs)."""
        self.task_mix = TaskMix(spec)
        self.updater = build_updater(spec, self.learner, self.batcher, self.encoder, group)
        # counters (checkpointed)
        self.wall_offset = 0.0
        self.next_checkpoint = spec.checkpoint.every_env_steps
        self.order_id = 0
        # run-local state
        self.signals = RunSignals()
        self.pool = ObserverPool(observers, transport, metrics, self.signals, self._clock,
                                 replace_observer)
        self.evaluator = OnlineEvaluator(spec, self.pool, self.signals, metrics,
                                         self.task_mix, self._clock, self._take_snapshot,
                                         self._next_order_id)
        self.videos = (TrainingVideos(spec, run_dir, metrics)
                       if spec.eval.video_every_env_steps else None)
        self.warmup_until = min(spec.learner.start_after_env_steps, spec.budget.env_steps)
        """Updates wait until this many env steps are stored (checkpointed runs: until the
        replay not restored is collected again)."""
        self._snapshot = self._take_snapshot()
        self._window = TrainingWindow(len(self.tasks))
        self.ingest = EpisodeIngest(self.tasks, self.replays, self.encoder,
                                    self.updater.encoder_updated, self.task_mix, self._window,
                                    lambda: self.learner.updates, group)
        self._start = time.monotonic()
        self._episode_queue: EpisodeQueue = asyncio.Queue(spec.collect.episode_queue_size)
        self.dispatch = Dispatcher(spec, self.shapes, self.pool, self.signals, self.task_mix,
                                   self.rng, self._episode_queue, lambda: self.env_steps,
                                   self._learner_pace, lambda: self._snapshot,
                                   self._next_order_id)

    # ----------------------------------------------------------------- state
    @property
    def env_steps(self) -> int:
        """Env steps stored so far, all tasks."""
        return self.ingest.env_steps

    def wall_time(self) -> float:
        return self.wall_offset + time.monotonic() - self._start

    def _clock(self) -> tuple[int, float]:
        """``(env_steps, wall_time_s)`` now."""
        return self.env_steps, self.wall_time()

    def state_dict(self) -> dict:
        """Everything needed to resume: networks, optimizers, normalizers, counters, RNGs."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "learner": self.learner.state_dict(),
            "encoder": self.encoder.state_dict(),
            "strategies": self.task_mix.state_dict(),  # the key of older checkpoints
            "meta": self.updater.state_dict(),
            "counters": {
                "env_steps": self.env_steps,
                "episodes": self.ingest.episodes,
                "wall_time_s": self.wall_time(),
                "next_eval": self.evaluator.next_eval,
                "last_evaluated": self.evaluator.last_evaluated,
                "next_checkpoint": self.next_checkpoint,
                "order_id": self.order_id,
                "replay_episodes": [replay.added for replay in self.replays],
                "replay_episodes_by_rank": self.replay_episodes_by_rank or [],
            },
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.encoder.load_state_dict(state["encoder"])
        if "strategies" in state:  # checkpoints before the task mix have none
            self.task_mix.load_state_dict(state["strategies"])
        self.updater.load_state_dict(state.get("meta", {}))
        counters = state["counters"]
        self.ingest.env_steps = int(counters["env_steps"])
        self.ingest.episodes = int(counters["episodes"])
        self.wall_offset = float(counters["wall_time_s"])
        self.evaluator.next_eval = int(counters["next_eval"])
        if last := counters.get("last_evaluated"):  # checkpoints before it have none
            self.evaluator.last_evaluated = (int(last[0]), int(last[1]))
        self.next_checkpoint = int(counters["next_checkpoint"])
        self.order_id = int(counters["order_id"])
        restore_rng_state(self.rng, state["rng"])
        for task, chunks, replay, upto in zip(
            self.tasks, self.replay_chunks, self.replays, counters["replay_episodes"], strict=True
        ):
            unreadable, lost = chunks.restore(replay, int(upto))
            if unreadable:
                self._report_lost_replay(task, unreadable, lost)
        self.replay_episodes_by_rank = counters.get("replay_episodes_by_rank") or None
        if self.group is not None:
            self.group.mark_restored(self.replay_episodes_by_rank,
                                     any(r.episodes for r in self.replays))
        # Whatever replay was not restored is collected again before updates resume.
        restored = sum(replay.transitions for replay in self.replays)
        remaining = self.spec.budget.env_steps - self.env_steps
        warmup = min(self.spec.learner.start_after_env_steps, restored + remaining)
        self.warmup_until = self.env_steps + max(0, warmup - restored)
        self._snapshot = self._take_snapshot()

    def _report_lost_replay(self, task: str, unreadable: list[Path], lost: int) -> None:
        """A resume without unreadable replay chunks: one stderr line and a metrics record."""
        names = ", ".join(str(path) for path in unreadable)
        print(f"warning: {task}: resumed without {lost} replay episode(s); unreadable: {names}",
              file=sys.stderr)
        self.metrics.emit({"event": "replay_lost", "task": task, "env_steps": self.env_steps,
                           "episodes": lost, "chunks": [str(path) for path in unreadable]})

    def checkpoint(self) -> Path:
        """Replay chunks first, then the checkpoint that counts them (atomically)."""
        for chunks, replay in zip(self.replay_chunks, self.replays, strict=True):
            chunks.flush(replay)
        if self.group is not None and not self.group.stopped:
            self.replay_episodes_by_rank = self.group.flush_replay()
        path = self.run_dir / "checkpoints" / LATEST
        save_checkpoint(path, self.state_dict())
        return path

    # -------------------------------------------------------------- run loop
    async def run(self) -> Record:
        """Train to the budget (or a stop request); returns the end record.

        Whatever happens (budget reached, stop signal, error in any part), the final
        checkpoint and the ``end`` record are written before this returns or raises.
        """
        loop = asyncio.get_running_loop()
        self._start = time.monotonic()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.signals.request_stop)
        self.metrics.on_disk_full = lambda error: loop.call_soon_threadsafe(
            self.signals.stop_after, error)
        self.metrics.start()
        drive = asyncio.create_task(self._drive())
        try:
            await self.signals.supervise(drive)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            end = await self._finish()
        if self.signals.errors:
            error = self.signals.errors[0]
            raise RunError(f"run stopped after an error: {describe(error)}") from error
        return end

    async def _drive(self) -> None:
        """Collection slots, consumer, evaluator and learner, to the budget or a stop."""
        guard = self.signals.guard
        for _ in range(self.spec.collect.orders_in_flight):
            for observer in self.pool.names:  # interleaved: a rate-limited run feeds them all
                self.dispatch.start_slot(observer)
        consumer = asyncio.create_task(guard(self._consume()))
        evaluator = asyncio.create_task(guard(self._evaluate_loop()))
        videos = asyncio.create_task(guard(self._video_loop()))
        watcher = asyncio.create_task(guard(self.pool.admit_replacements(
            self.dispatch.start_slot, self.spec.collect.orders_in_flight,
            self.spec.distributed.start_timeout_s)))
        try:
            await guard(self._learn())
            while running := [task for task in self.dispatch.slot_tasks if not task.done()]:
                await asyncio.gather(*running)
            await self._episode_queue.put(None)
            await consumer
            await self.signals.notify()
            await evaluator
            await videos
            final = (self.env_steps, self.learner.updates)  # the weights the run ends with
            if not self.signals.stopping and self.evaluator.last_evaluated != final:
                await guard(self.evaluator.evaluate())
        finally:
            others = (*self.dispatch.slot_tasks, consumer, evaluator, videos, watcher,
                      *self.signals.background_tasks())
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    async def _finish(self) -> Record:
        """Final checkpoint, the end record, metrics flushed."""
        self.updater.close()
        try:
            self.checkpoint()
        except Exception as exc:  # a full disk must not cost the end line
            self.signals.errors.append(exc)
        if self.group is not None:
            self.group.stop()
        end = {
            "event": "end",
            "env_steps": self.env_steps,
            "wall_time_s": round(self.wall_time(), 3),
            "updates": self.learner.updates,
            "episodes": self.ingest.episodes,
            "stopped": self.signals.stopping,
            "episodes_by_observer": self.pool.episodes,
            "observers_lost": self.pool.losses,
            "observers_rejoined": self.pool.rejoined,
            "metrics_dropped": self.metrics.dropped,
        }
        if self.signals.errors:
            end["error"] = describe(self.signals.errors[0])
        await self.metrics.emit_reliable(end)
        await self.metrics.close()
        return end

    # ---------------------------------------------------------- dispatch pace
    def _learner_pace(self) -> float:
        """Env steps the learner has used up at its update-to-data ratio (or the warm-up
        covers); collection may run ``collect_ahead_env_steps`` ahead of this."""
        if self.group is not None and not self.group.ready():
            return float("inf")  # every learner rank needs data before the first update
        consumed = self.learner.updates / self.spec.learner.updates_per_env_step
        return max(self.warmup_until, consumed)

    def _next_order_id(self) -> int:
        self.order_id += 1
        return self.order_id

    # ----------------------------------------------------------------- ingest
    async def _consume(self) -> None:
        """Move replies from the queue into replay; trigger checkpoints."""
        while (item := await self._episode_queue.get()) is not None:
            result, steps, noise_free = item
            for batch in result.batches:
                self.ingest.store(batch, noise_free)
                self.pool.episodes[result.observer] += batch.num_episodes
            self.dispatch.pending_steps -= steps
            if self.env_steps >= self.next_checkpoint:
                self.checkpoint()
                self.next_checkpoint = next_multiple(self.env_steps,
                                                     self.spec.checkpoint.every_env_steps)
            await self.signals.notify()
            await asyncio.sleep(0)

    # --------------------------------------------------------------- learner
    def _may_update(self) -> bool:
        stored = sum(r.transitions for r in self.replays)
        ratio = self.spec.learner.updates_per_env_step
        return (
            not self.signals.stopping
            and (stored > 0 if self.group is None else self.group.ready())
            and self.env_steps >= self.warmup_until
            and self.learner.updates < ratio * self.env_steps
        )

    def _learning_finished(self) -> bool:
        return self.dispatch.finished() and not self._may_update()

    async def _learn(self) -> None:
        """One update at a time, yielding to the loop in between, until budget and ratio met."""
        while True:
            if self._may_update():
                self._update_once()
                await self.signals.notify()
                await asyncio.sleep(0)  # let replies, dispatch and signals in between updates
                continue
            if self._learning_finished():
                return
            await self.signals.wait_until(lambda: self._may_update() or self._learning_finished())

    def _update_once(self) -> None:
        shares, task_weights = self.task_mix.batch_shares(), self.task_mix.weights()
        before = self.learner.updates
        result = self.updater.update(shares, task_weights)
        after = self.learner.updates
        self.task_mix.update_done(result, task_weights)
        self._window.add_update(result, torch.as_tensor(task_weights), updates=after - before)
        every = self.spec.metrics.signals_every_updates
        if every and crossed(before, after, every):
            signals, present = task_signals(self.learner, self.updater.signal_batch(shares),
                                            torch.as_tensor(task_weights))
            self._window.add_per_task(signals, present)
        if crossed(before, after, self.spec.collect.weights_every_updates):
            self._snapshot = self._take_snapshot()
        if crossed(before, after, self.spec.metrics.every_updates):
            self.metrics.emit(self._train_record())

    def refresh_snapshot(self) -> None:
        """Send observers the current weights with their next order (after a transfer)."""
        self._snapshot = self._take_snapshot()

    def _take_snapshot(self) -> PolicySnapshot:
        return PolicySnapshot(
            self.learner.updates, self.learner.actor_state_cpu(), self.encoder.state_dict()
        )

    def _train_record(self) -> Record:
        return {
            "event": "train",
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "wall_time_s": round(self.wall_time(), 3),
            **self._window.flush(self.tasks, time.monotonic()),
            "queues/episodes": self._episode_queue.qsize(),
            "queues/metrics": self.metrics.queue.qsize(),
            "queues/pending_env_steps": self.dispatch.pending_steps,
            "metrics/dropped": self.metrics.dropped,
        }

    # ------------------------------------------------------------ evaluation
    async def _whenever_due(self, next_due: Callable[[], int],
                            act: Callable[[], Awaitable[None]],
                            over: Callable[[], bool]) -> None:
        """``act`` each time the env steps reach ``next_due()`` (which ``act`` moves on),
        until ``over()`` or the run stops."""
        while True:
            await self.signals.wait_until(
                lambda: self.signals.stopping or self.env_steps >= next_due() or over())
            if self.signals.stopping or over():
                return
            await act()

    async def _evaluate_loop(self) -> None:
        """Evaluations at the evaluator's cadence while collection goes on; once all is
        collected, the final evaluation (of the final weights) takes the last one's place."""
        await self._whenever_due(lambda: self.evaluator.next_eval, self.evaluator.evaluate,
                                 self.dispatch.finished)

    async def _video_loop(self) -> None:
        """A video per task at ``eval.video_every_env_steps``, when the spec asks for them."""
        if (videos := self.videos) is None:
            return
        videos.start_at(self.env_steps)
        await self._whenever_due(lambda: videos.next_due, lambda: videos.record(
            self._take_snapshot(), *self._clock(), lambda: self.signals.stopping),
            self._learning_finished)
