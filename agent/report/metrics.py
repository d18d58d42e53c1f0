"""Non-blocking metrics pipeline: producers put records on a bounded asyncio queue, sinks consume.

Training scalars are droppable (``emit`` never waits; drops are counted and reported).
Evaluation and end records use ``emit_reliable``, which waits for room instead.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from agent.checkpoint import DiskFull, as_disk_full

Record = dict[str, Any]


class Sink(Protocol):
    """Consumes records; ``write`` runs in a worker thread, so it may block briefly."""

    def write(self, record: Record) -> None: ...

    def close(self) -> None: ...


class MetricsPipeline:
    """A bounded queue between producers and sinks, drained by one consumer task."""

    def __init__(self, sinks: Sequence[Sink], queue_size: int) -> None:
        self.sinks = list(sinks)
        self.queue: asyncio.Queue[Record | None] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.failed_sinks: list[str] = []
        self.on_disk_full: Callable[[DiskFull], None] | None = None
        """Called (from the writer thread) when a sink fails for lack of space; the run
        stops with that error, so the sink's failure is not also printed."""
        self._consumer: asyncio.Task | None = None

    def start(self) -> None:
        self._consumer = asyncio.get_running_loop().create_task(self._consume())

    def emit(self, record: Record) -> None:
        """Queue ``record`` if there is room, else count it as dropped. Never waits."""
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    async def emit_reliable(self, record: Record) -> None:
        """Queue ``record``, waiting for room: for records that must not be lost."""
        await self.queue.put(record)

    async def _consume(self) -> None:
        while (record := await self.queue.get()) is not None:
            await asyncio.to_thread(self._write_all, record)

    def _write_all(self, record: Record) -> None:
        for sink in list(self.sinks):
            try:
                sink.write(record)
            except Exception as exc:  # one broken sink must not stop the others or the run
                self.sinks.remove(sink)
                self.failed_sinks.append(type(sink).__name__)
                where = getattr(exc, "filename", None) or f"the {type(sink).__name__}'s files"
                full = as_disk_full(exc, where)
                if full is not None and self.on_disk_full is not None:
                    self.on_disk_full(full)
                    continue
                print(f"warning: metrics sink {type(sink).__name__} failed and is disabled: "
                      f"{exc!r}", file=sys.stderr)

    async def close(self) -> None:
        """Drain everything queued, then close the sinks."""
        if self._consumer is not None:
            await self.queue.put(None)
            await self._consumer
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                print(f"warning: closing {type(sink).__name__} failed: {exc!r}", file=sys.stderr)
