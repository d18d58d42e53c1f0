"""The run's observers: who is live, lost, dropped or being replaced, whose turn it is to
get an order, and sending one (a failed order marks its observer lost).

A lost observer gets no more orders. It is dropped from the RPC group so that a
replacement can join under its name; a local run starts one. Once the old process has no
order left, the name back in the group is the replacement, and it is admitted again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

from agent.report.metrics import MetricsPipeline
from agent.run.run_signals import RunError, RunSignals
from agent.run.transport import Transport, in_daemon_thread
from common.messages import Order, OrderResult

REJOIN_POLL_S = 0.5
"""How often the agent looks for replacements of lost observers."""

Clock = Callable[[], tuple[int, float]]
"""The run's ``(env_steps, wall_time_s)`` now, for the records the pool writes."""


class ObserverPool:
    """Per-observer bookkeeping and the one way orders go out."""

    def __init__(
        self,
        names: Sequence[str],
        transport: Transport,
        metrics: MetricsPipeline,
        signals: RunSignals,
        clock: Clock,
        replace_observer: Callable[[str], bool] | None = None,
    ) -> None:
        self.names = list(names)
        self.transport, self.metrics, self.signals = transport, metrics, signals
        self._clock = clock
        self.replace_observer = replace_observer
        """Starts a replacement for a lost observer (local runs; blocking): whether it did."""
        self.episodes = dict.fromkeys(self.names, 0)
        """Episodes delivered, by observer name (a replacement adds to its predecessor)."""
        self.slots = dict.fromkeys(self.names, 0)
        """Collection coroutines serving each observer."""
        self.in_flight = dict.fromkeys(self.names, 0)
        """Collection orders out per observer (dispatch fairness)."""
        self._unanswered = dict.fromkeys(self.names, 0)
        """Orders of any kind sent to a name and neither answered nor failed yet."""
        self._last_dispatch = dict.fromkeys(self.names, 0)
        self._dispatches = 0
        self.sent_version: dict[str, int] = {}
        """The policy version each observer holds (sent with an order)."""
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

    def live(self) -> list[str]:
        return [o for o in self.names if o not in self.lost]

    def turn_of(self, observer: str) -> bool:
        """Fair dispatch: the live observer with a free slot, fewest orders in flight and
        the oldest last dispatch goes next (a condition's wake-up order is not fair)."""
        free = [o for o in self.live() if self.in_flight[o] < self.slots[o]]
        return bool(free) and observer == min(
            free, key=lambda o: (self.in_flight[o], self._last_dispatch[o])
        )

    def dispatching(self, observer: str) -> None:
        """``observer`` is about to get a collection order."""
        self.in_flight[observer] += 1
        self._dispatches += 1
        self._last_dispatch[observer] = self._dispatches

    async def submit(self, observer: str, order: Order) -> OrderResult | None:
        """The reply, or None once ``observer`` is marked lost (died, or past the timeout)."""
        self._unanswered[observer] += 1
        try:
            return await self.transport.submit(observer, order)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.lose(observer, exc)
            return None
        finally:
            self._unanswered[observer] -= 1

    def lose(self, observer: str, error: Exception) -> None:
        if observer not in self.lost:
            env_steps, wall = self._clock()
            self.lost.append(observer)
            self.losses += 1
            self._lost_at[observer] = wall
            print(f"warning: {observer} lost ({error!r}); its work goes to the others",
                  file=sys.stderr)
            self.metrics.emit({"event": "observer_lost", "observer": observer,
                               "env_steps": env_steps, "wall_time_s": round(wall, 3),
                               "episodes": self.episodes[observer]})
            self.signals.in_background(self._drop(observer, error))
        if len(self.lost) == len(self.names) and self.replace_observer is None:
            raise RunError(f"every observer is lost (last: {observer}: {error!r})")

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
            if replace is not None and not self.signals.stopping and await in_daemon_thread(
                lambda: replace(observer)
            ):
                self._replacing.add(observer)
        if len(self.lost) == len(self.names) and not self._replacing:
            raise RunError(f"every observer is lost (last: {observer}: {error!r})")

    async def admit_replacements(self, start_slot: Callable[[str], None],
                                 orders_in_flight: int, start_timeout_s: float) -> None:
        """A dropped observer's name back in the RPC group is its replacement: give it work
        (``start_slot`` up to ``orders_in_flight`` per observer) once the old process's
        last orders have failed."""
        while True:
            await asyncio.sleep(REJOIN_POLL_S)
            if len(self.lost) == len(self.names) and self._replacing:
                waited = self._clock()[1] - max(self._lost_at.values())
                if waited > start_timeout_s:
                    raise RunError(f"every observer is lost and no replacement joined within "
                                   f"{waited:.0f} s")
            waiting = [o for o in self.lost if o in self._dropped and self._unanswered[o] == 0]
            if not waiting or self.signals.stopping:
                continue
            present = await in_daemon_thread(self.transport.members)  # store calls block
            for observer in waiting:
                if observer in present:
                    self._readmit(observer)
                    # slots of the old process waiting for their turn serve the new one
                    for _ in range(orders_in_flight - self.slots[observer]):
                        start_slot(observer)
            await self.signals.notify()

    def _readmit(self, observer: str) -> None:
        self.lost.remove(observer)
        self._dropped.discard(observer)
        self._replacing.discard(observer)
        self.sent_version.pop(observer, None)  # a fresh process: send it the weights
        self.rejoined += 1
        env_steps, wall = self._clock()
        down_s = wall - self._lost_at.pop(observer)
        print(f"{observer} rejoined after {down_s:.1f} s", file=sys.stderr)
        self.metrics.emit({"event": "observer_rejoined", "observer": observer,
                           "env_steps": env_steps, "wall_time_s": round(wall, 3),
                           "down_s": round(down_s, 3)})
