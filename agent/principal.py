"""The principal agent: dispatches task lists, feeds replay, trains, evaluates, checkpoints.

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
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from agent.checkpoint import LATEST, save_checkpoint
from agent.learner_ranks import RankGroup, replay_root, shard_capacity
from agent.metrics import MetricsPipeline, Record
from agent.model import build_batcher, build_learner
from agent.mpi import GradientAverager
from agent.replay_store import ReplayChunks
from agent.strategies import TaskStrategies
from agent.training_window import TrainingWindow
from agent.transport import Transport, in_daemon_thread
from agent.updater import build_updater
from common.messages import EpisodeBatch, Order, OrderResult, PolicySnapshot
from common.policy import build_encoder, task_shapes
from common.spec import Spec

EVAL_SEED_OFFSET = 1_000_003
STOP_GRACE_S = 10.0
"""After a stop request, how long in-flight orders may still arrive and be stored."""
REJOIN_POLL_S = 0.5
"""How often the agent looks for replacements of lost observers."""


class RunError(RuntimeError):
    """The run stopped on an error after saving what it had."""


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
        self.spec, self.run_dir, self.transport = spec, run_dir, transport
        self.group = group
        """The other MPI learner ranks, when started by mpiexec."""
        self.replace_observer = replace_observer
        """Starts a replacement for a lost observer (local runs; blocking): whether it did."""
        self.observers, self.metrics = list(observers), metrics
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
        self.strategies = TaskStrategies(spec)
        self.updater = build_updater(spec, self.learner, self.batcher, self.encoder, group)
        # counters (checkpointed)
        self.env_steps = 0
        self.episodes = 0
        self.wall_offset = 0.0
        self.next_eval = spec.eval.every_env_steps
        self.next_checkpoint = spec.checkpoint.every_env_steps
        self.order_id = 0
        # run-local state
        self.pending_steps = 0
        self.episodes_by_observer: dict[str, int] = dict.fromkeys(self.observers, 0)
        self._slots = dict.fromkeys(self.observers, 0)
        self._in_flight = dict.fromkeys(self.observers, 0)
        """Collection orders out per observer (dispatch fairness)."""
        self._unanswered = dict.fromkeys(self.observers, 0)
        """Orders of any kind sent to a name and neither answered nor failed yet."""
        self._last_dispatch = dict.fromkeys(self.observers, 0)
        self._dispatches = 0
        self.lost: list[str] = []
        """Observers that died or stopped answering; they get no more orders until a
        replacement with the same name joins."""
        self.losses = 0
        self.rejoined = 0
        self._lost_at: dict[str, float] = {}
        self._dropped: set[str] = set()
        """Lost observers already removed from the RPC group: a member of that name now is
        a replacement."""
        self._replacing: set[str] = set()
        """Lost observers whose replacement this run has started."""
        self._slot_tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()
        self._reassigned: deque[tuple[list[tuple[str, int]], bool]] = deque()
        self.stopping = False
        self.errors: list[BaseException] = []
        self._warmup_until = min(spec.learner.start_after_env_steps, spec.budget.env_steps)
        self._sent_version: dict[str, int] = {}
        self._snapshot = self._take_snapshot()
        self._window = TrainingWindow(len(self.tasks))
        self._start = time.monotonic()
        self._progress: asyncio.Condition | None = None
        self._stop_requested: asyncio.Event | None = None
        self._force_stop: asyncio.Event | None = None
        self._episode_queue: asyncio.Queue[tuple[OrderResult, int, bool] | None] | None = None
        self._last_eval_steps = -1

    # ----------------------------------------------------------------- state
    def wall_time(self) -> float:
        return self.wall_offset + time.monotonic() - self._start

    def state_dict(self) -> dict:
        """Everything needed to resume: networks, optimizers, normalizers, counters, RNGs."""
        return {
            "spec": self.spec.model_dump(mode="json"),
            "learner": self.learner.state_dict(),
            "encoder": self.encoder.state_dict(),
            "strategies": self.strategies.state_dict(),
            "meta": self.updater.state_dict(),
            "counters": {
                "env_steps": self.env_steps,
                "episodes": self.episodes,
                "wall_time_s": self.wall_time(),
                "next_eval": self.next_eval,
                "next_checkpoint": self.next_checkpoint,
                "order_id": self.order_id,
                "replay_episodes": [replay.added for replay in self.replays],
                "replay_episodes_by_rank": self.replay_episodes_by_rank or [],
            },
            "rng": {
                "numpy": self.rng.bit_generator.state,
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.encoder.load_state_dict(state["encoder"])
        if "strategies" in state:  # checkpoints before the strategies have none
            self.strategies.load_state_dict(state["strategies"])
        self.updater.load_state_dict(state.get("meta", {}))
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        self.episodes = int(counters["episodes"])
        self.wall_offset = float(counters["wall_time_s"])
        self.next_eval = int(counters["next_eval"])
        self.next_checkpoint = int(counters["next_checkpoint"])
        self.order_id = int(counters["order_id"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
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
        self._warmup_until = self.env_steps + max(0, warmup - restored)
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
        self._progress = asyncio.Condition()
        self._episode_queue = asyncio.Queue(self.spec.collect.episode_queue_size)
        self._stop_requested = asyncio.Event()
        self._force_stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        self.metrics.start()
        drive = asyncio.create_task(self._drive())
        try:
            await self._supervise(drive)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            end = await self._finish()
        if self.errors:
            raise RunError(f"run stopped after an error: {self.errors[0]!r}") from self.errors[0]
        return end

    async def _drive(self) -> None:
        """Collection slots, consumer, evaluator and learner, to the budget or a stop."""
        assert self._episode_queue is not None
        for _ in range(self.spec.collect.orders_in_flight):
            for observer in self.observers:  # interleaved: a rate-limited run feeds them all
                self._start_slot(observer)
        consumer = asyncio.create_task(self._guard(self._consume()))
        evaluator = asyncio.create_task(self._guard(self._evaluate_loop()))
        watcher = asyncio.create_task(self._guard(self._admit_replacements()))
        try:
            await self._guard(self._learn())
            while running := [task for task in self._slot_tasks if not task.done()]:
                await asyncio.gather(*running)
            await self._episode_queue.put(None)
            await consumer
            await self._notify()
            await evaluator
            if not self.stopping and self._last_eval_steps != self.env_steps:
                await self._guard(self._evaluate())
        finally:
            others = (*self._slot_tasks, consumer, evaluator, watcher, *self._background)
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

    async def _supervise(self, drive: asyncio.Task) -> None:
        """Let ``drive`` finish; after a stop, give in-flight orders a bounded grace period.

        The grace period is zero after an error and ends early on a second signal.
        """
        assert self._stop_requested is not None and self._force_stop is not None
        stopped = asyncio.create_task(self._stop_requested.wait())
        forced = asyncio.create_task(self._force_stop.wait())
        try:
            await asyncio.wait({drive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not drive.done():
                grace = 0.0 if self.errors else STOP_GRACE_S
                await asyncio.wait({drive, forced}, timeout=grace,
                                   return_when=asyncio.FIRST_COMPLETED)
            if not drive.done():
                drive.cancel()
            await asyncio.gather(drive, return_exceptions=True)
        finally:
            stopped.cancel()
            forced.cancel()

    async def _finish(self) -> Record:
        """Final checkpoint, the end record, metrics flushed."""
        self.updater.close()
        try:
            self.checkpoint()
        except Exception as exc:  # a full disk must not cost the end line
            self.errors.append(exc)
        if self.group is not None:
            self.group.stop()
        end = {
            "event": "end",
            "env_steps": self.env_steps,
            "wall_time_s": round(self.wall_time(), 3),
            "updates": self.learner.updates,
            "episodes": self.episodes,
            "stopped": self.stopping,
            "episodes_by_observer": self.episodes_by_observer,
            "observers_lost": self.losses,
            "observers_rejoined": self.rejoined,
            "metrics_dropped": self.metrics.dropped,
        }
        if self.errors:
            end["error"] = repr(self.errors[0])
        await self.metrics.emit_reliable(end)
        await self.metrics.close()
        return end

    def request_stop(self) -> None:
        """Stop collecting and training; in-flight episodes are still stored.

        A second request (a second Ctrl-C) stops without waiting for them.
        """
        assert self._stop_requested is not None and self._force_stop is not None
        if self.stopping:
            self._force_stop.set()
        self.stopping = True
        self._stop_requested.set()
        asyncio.get_running_loop().create_task(self._notify())

    async def _guard(self, coro) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(exc)
            self.request_stop()

    async def _notify(self) -> None:
        assert self._progress is not None
        async with self._progress:
            self._progress.notify_all()

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        assert self._progress is not None
        async with self._progress:
            await self._progress.wait_for(predicate)

    # ------------------------------------------------------------ collection
    def _budget_left(self) -> int:
        return self.spec.budget.env_steps - self.env_steps - self.pending_steps

    def _episode_fits(self) -> bool:
        return self._budget_left() >= min(s.horizon for s in self.shapes)

    def _collection_finished(self) -> bool:
        return (self.stopping or not self._episode_fits()) and self.pending_steps == 0

    def _may_dispatch(self) -> bool:
        if self.group is not None and not self.group.ready():
            return True  # every learner rank needs data before the first update
        cfg = self.spec.learner
        consumed = self.learner.updates / cfg.updates_per_env_step
        allowed = max(self._warmup_until, consumed) + cfg.collect_ahead_env_steps
        return self.env_steps + self.pending_steps < allowed

    def _next_order(self, observer: str) -> Order | None:
        """The scheduler's task list clipped to the budget, with fresh weights if stale."""
        left = self._budget_left()
        tasks = []
        if self._reassigned:
            wanted, explore = self._reassigned.popleft()
        else:
            wanted, explore = self.strategies.next_order(self.spec.collect.episodes_per_task,
                                                         self.rng)
        for task, n in wanted:
            horizon = self.shapes[self.tasks.index(task)].horizon
            n = min(n, left // horizon)
            if n > 0:
                tasks.append((task, n))
                left -= n * horizon
        if not tasks:
            return None
        self.order_id += 1
        return Order(
            self.order_id, tasks, explore, int(self.rng.integers(2**31 - 1)),
            self._policy_for(observer),
        )

    def _policy_for(self, observer: str) -> PolicySnapshot | None:
        if self._sent_version.get(observer, -1) >= self._snapshot.version:
            return None
        self._sent_version[observer] = self._snapshot.version
        return self._snapshot

    def _order_steps(self, order: Order) -> int:
        return sum(n * self.shapes[self.tasks.index(t)].horizon for t, n in order.tasks)

    async def _collect_slot(self, observer: str) -> None:
        """Keep one order outstanding at ``observer`` until the budget is dispatched."""
        self._slots[observer] += 1
        try:
            await self._collect_with_slot(observer)
        finally:
            self._slots[observer] -= 1
            await self._notify()  # another observer's turn now

    async def _collect_with_slot(self, observer: str) -> None:
        assert self._episode_queue is not None
        while True:
            # Wait rather than exit when the budget is merely all dispatched: a lost
            # observer's steps can come back and must still be collected.
            await self._wait_until(
                lambda: self.stopping or self._collection_finished()
                or (self._may_dispatch() and self._episode_fits() and self._turn_of(observer))
            )
            if self.stopping or self._collection_finished() or observer in self.lost:
                return
            order = self._next_order(observer)
            if order is None:
                return
            steps = self._order_steps(order)
            self.pending_steps += steps
            self._in_flight[observer] += 1
            self._dispatches += 1
            self._last_dispatch[observer] = self._dispatches
            try:
                result = await self._submit_or_lose(observer, order)
            except BaseException:
                self.pending_steps -= steps
                raise
            finally:
                self._in_flight[observer] -= 1
            if result is None:  # observer lost: its task list goes to the remaining ones
                self.pending_steps -= steps
                self._reassigned.append((order.tasks, order.explore))
                await self._notify()
                return
            await self._episode_queue.put((result, steps, not order.explore))

    def _turn_of(self, observer: str) -> bool:
        """Fair dispatch: the live observer with a free slot, fewest orders in flight and
        the oldest last dispatch goes next (the condition's wake-up order is not fair)."""
        free = [o for o in self._live_observers() if self._in_flight[o] < self._slots[o]]
        return bool(free) and observer == min(
            free, key=lambda o: (self._in_flight[o], self._last_dispatch[o])
        )

    async def _submit_or_lose(self, observer: str, order: Order) -> OrderResult | None:
        """The reply, or None once ``observer`` is marked lost (died, or past the timeout)."""
        self._unanswered[observer] += 1
        try:
            return await self.transport.submit(observer, order)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._lose(observer, exc)
            return None
        finally:
            self._unanswered[observer] -= 1

    def _lose(self, observer: str, error: Exception) -> None:
        if observer not in self.lost:
            self.lost.append(observer)
            self.losses += 1
            self._lost_at[observer] = self.wall_time()
            print(f"warning: {observer} lost ({error!r}); its work goes to the others",
                  file=sys.stderr)
            self.metrics.emit({"event": "observer_lost", "observer": observer,
                               "env_steps": self.env_steps,
                               "wall_time_s": round(self.wall_time(), 3),
                               "episodes": self.episodes_by_observer[observer]})
            self._in_background(self._drop(observer, error))
        if len(self.lost) == len(self.observers) and self.replace_observer is None:
            raise RunError(f"every observer is lost (last: {observer}: {error!r})")

    def _in_background(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _drop(self, observer: str, error: Exception) -> None:
        """Remove a lost observer from the RPC group, so that a replacement can join under
        its name, and start one if this run owns its observers and is not stopping."""
        try:
            await in_daemon_thread(lambda: self.transport.forget(observer))
        except Exception as exc:
            print(f"warning: cannot make room for a replacement of {observer}: {exc!r}",
                  file=sys.stderr)
        else:
            self._dropped.add(observer)
            replace = self.replace_observer
            if replace is not None and not self.stopping and await in_daemon_thread(
                lambda: replace(observer)
            ):
                self._replacing.add(observer)
        if len(self.lost) == len(self.observers) and not self._replacing:
            raise RunError(f"every observer is lost (last: {observer}: {error!r})")

    async def _admit_replacements(self) -> None:
        """A dropped observer's name back in the RPC group is its replacement: give it work
        once the old process's last orders have failed."""
        while True:
            await asyncio.sleep(REJOIN_POLL_S)
            if len(self.lost) == len(self.observers) and self._replacing:
                waited = self.wall_time() - max(self._lost_at.values())
                if waited > self.spec.distributed.start_timeout_s:
                    raise RunError(f"every observer is lost and no replacement joined within "
                                   f"{waited:.0f} s")
            waiting = [o for o in self.lost if o in self._dropped and self._unanswered[o] == 0]
            if not waiting or self.stopping:
                continue
            present = self.transport.members()
            for observer in waiting:
                if observer in present:
                    self._readmit(observer)
            await self._notify()

    def _readmit(self, observer: str) -> None:
        self.lost.remove(observer)
        self._dropped.discard(observer)
        self._replacing.discard(observer)
        self._sent_version.pop(observer, None)  # a fresh process: send it the weights
        self.rejoined += 1
        down_s = self.wall_time() - self._lost_at.pop(observer)
        print(f"{observer} rejoined after {down_s:.1f} s", file=sys.stderr)
        self.metrics.emit({"event": "observer_rejoined", "observer": observer,
                           "env_steps": self.env_steps,
                           "wall_time_s": round(self.wall_time(), 3),
                           "down_s": round(down_s, 3)})
        # slots of the old process that were waiting for their turn serve the new one
        for _ in range(self.spec.collect.orders_in_flight - self._slots[observer]):
            self._start_slot(observer)

    def _start_slot(self, observer: str) -> None:
        self._slot_tasks.append(asyncio.create_task(self._guard(self._collect_slot(observer))))

    def _live_observers(self) -> list[str]:
        return [o for o in self.observers if o not in self.lost]

    async def _consume(self) -> None:
        """Move replies from the queue into replay; trigger checkpoints."""
        assert self._episode_queue is not None
        while (item := await self._episode_queue.get()) is not None:
            result, steps, noise_free = item
            for batch in result.batches:
                self._store(batch, noise_free)
                self.episodes_by_observer[result.observer] += batch.num_episodes
            self.pending_steps -= steps
            if self.env_steps >= self.next_checkpoint:
                self.checkpoint()
                every = self.spec.checkpoint.every_env_steps
                self.next_checkpoint = (self.env_steps // every + 1) * every
            await self._notify()
            await asyncio.sleep(0)

    def _store(self, batch: EpisodeBatch, noise_free: bool) -> None:
        task = self.tasks.index(batch.task)
        if self.group is None or self.group.route(batch):
            self.replays[task].add(batch)
        goals = np.concatenate([batch.achieved_goal, batch.desired_goal], axis=1)
        self.encoder.update(task, batch.obs, goals)
        self.updater.encoder_updated()
        self.strategies.episodes_arrived(batch, noise_free)
        self.env_steps += batch.env_steps
        self.episodes += batch.num_episodes
        self._window.add_episodes(task, batch, self.learner.updates)

    # --------------------------------------------------------------- learner
    def _may_update(self) -> bool:
        stored = sum(r.transitions for r in self.replays)
        ratio = self.spec.learner.updates_per_env_step
        return (
            not self.stopping
            and (stored > 0 if self.group is None else self.group.ready())
            and self.env_steps >= self._warmup_until
            and self.learner.updates < ratio * self.env_steps
        )

    def _learning_finished(self) -> bool:
        return self._collection_finished() and not self._may_update()

    async def _learn(self) -> None:
        """One update at a time, yielding to the loop in between, until budget and ratio met."""
        while True:
            if self._may_update():
                self._update_once()
                await self._notify()
                await asyncio.sleep(0)  # let replies, dispatch and signals in between updates
                continue
            if self._learning_finished():
                return
            await self._wait_until(lambda: self._may_update() or self._learning_finished())

    def _update_once(self) -> None:
        shares, task_weights = self.strategies.batch_shares(), self.strategies.weights()
        before = self.learner.updates
        out = self.updater.update(shares, task_weights)
        self.strategies.update_done(out, task_weights)
        del out["tasks/present"]
        self._window.add_update(out, torch.as_tensor(task_weights))
        after = self.learner.updates

        def crossed(every: int) -> bool:
            return after // every > before // every

        if crossed(self.spec.collect.weights_every_updates):
            self._snapshot = self._take_snapshot()
        if crossed(self.spec.metrics.every_updates):
            self.metrics.emit(self._train_record())

    def refresh_snapshot(self) -> None:
        """Send observers the current weights with their next order (after a transfer)."""
        self._snapshot = self._take_snapshot()

    def _take_snapshot(self) -> PolicySnapshot:
        return PolicySnapshot(
            self.learner.updates, self.learner.actor_state_cpu(), self.encoder.state_dict()
        )

    def _train_record(self) -> Record:
        record = {
            "event": "train",
            "env_steps": self.env_steps,
            "updates": self.learner.updates,
            "wall_time_s": round(self.wall_time(), 3),
            **self._window.flush(self.tasks, time.monotonic()),
            "queues/episodes": self._episode_queue.qsize() if self._episode_queue else 0,
            "queues/metrics": self.metrics.queue.qsize(),
            "queues/pending_env_steps": self.pending_steps,
            "metrics/dropped": self.metrics.dropped,
        }
        return record

    # ------------------------------------------------------------ evaluation
    async def _evaluate_loop(self) -> None:
        while True:
            await self._wait_until(
                lambda: self.stopping or self.env_steps >= self.next_eval
                or self._learning_finished()
            )
            if self.stopping or self._learning_finished():
                return
            await self._evaluate()

    async def _evaluate(self) -> None:
        """Deterministic episodes of every task on the current weights, split over observers."""
        await self._wait_until(lambda: self.stopping or bool(self._live_observers()))
        if self.stopping:
            return
        snapshot = self._take_snapshot()
        env_steps, wall = self.env_steps, self.wall_time()
        since_last = self.strategies.eval_fields()
        every = self.spec.eval.every_env_steps
        self.next_eval = (env_steps // every + 1) * every
        live = self._live_observers()
        replies = []
        for index, share in enumerate(np.array_split(np.arange(self.spec.eval.episodes),
                                                      len(live))):
            if len(share) == 0:
                continue
            self.order_id += 1
            order = Order(
                self.order_id, [(t, len(share)) for t in self.tasks], False,
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
        self._last_eval_steps = env_steps

    async def _evaluate_share(self, observer: str, order: Order) -> OrderResult:
        """Run ``order`` on ``observer``, or on the next live observer if it is lost."""
        while True:
            self._sent_version[observer] = order.policy.version if order.policy else -1
            result = await self._submit_or_lose(observer, order)
            if result is not None:
                return result
            await self._wait_until(lambda: self.stopping or bool(self._live_observers()))
            if not self._live_observers():
                raise RunError("no observer left to finish the evaluation")
            observer = self._live_observers()[0]
