"""A run's lifecycle on its event loop: progress wake-ups, the stop request (and a second
one that forces it), errors from any part, and background tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agent.checkpoint import DiskFull

STOP_GRACE_S = 10.0
"""After a stop request, how long in-flight orders may still arrive and be stored."""


class RunError(RuntimeError):
    """The run stopped on an error after saving what it had."""


class RunSignals:
    """What every part of a run waits on or reports to. Create and use on one event loop."""

    def __init__(self) -> None:
        self.stopping = False
        self.errors: list[BaseException] = []
        self._progress = asyncio.Condition()
        self._stop_requested = asyncio.Event()
        self._force_stop = asyncio.Event()
        self._background: set[asyncio.Task] = set()

    def request_stop(self) -> None:
        """Stop collecting and training; in-flight episodes are still stored.

        A second request (a second Ctrl-C) stops without waiting for them.
        """
        if self.stopping:
            self._force_stop.set()
        self.stopping = True
        self._stop_requested.set()
        asyncio.get_running_loop().create_task(self.notify())

    async def notify(self) -> None:
        """Wake everything waiting in :meth:`wait_until`: the run's state changed."""
        async with self._progress:
            self._progress.notify_all()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async with self._progress:
            await self._progress.wait_for(predicate)

    async def guard(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro``; an error in it is kept and stops the run instead of escaping."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stop_after(exc)

    def stop_after(self, error: Exception) -> None:
        """Keep ``error`` (the run's first one is its cause) and stop the run."""
        self.errors.append(error)
        self.request_stop()

    def in_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` guarded alongside the run (see :meth:`background_tasks`)."""
        task = asyncio.get_running_loop().create_task(self.guard(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def background_tasks(self) -> list[asyncio.Task]:
        """The background tasks still running (to cancel with the run's own)."""
        return list(self._background)

    async def supervise(self, drive: asyncio.Task) -> None:
        """Let ``drive`` finish; after a stop, give in-flight orders a bounded grace period.

        The grace period is zero after an error and ends early on a second request.
        """
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


def describe(error: BaseException) -> str:
    """An error for the one line that reports it: a full disk as ``PATH: no space left on
    device``, anything else as its repr."""
    return error.strerror if isinstance(error, DiskFull) else repr(error)
