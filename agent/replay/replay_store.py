"""Replay persistence: append-only chunk files, one per task per checkpoint.

Each checkpoint writes the episodes added since the previous one
(``<task>/<first episode>-<episodes>.pt``,
tensors only, loadable with ``weights_only=True``), so the cost of a checkpoint does not
grow with the buffer. The checkpoint records how many episodes of each task it covers;
on resume, chunks are read up to that count and the newest ``capacity`` episodes kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agent.checkpoint import UnreadableCheckpoint, load_checkpoint, save_checkpoint
from agent.replay.episode_replay import FIELDS, EpisodeReplay
from common.messages import EpisodeBatch


class ReplayChunks:
    """Writes and reads one task's replay as chunk files under ``root/<task>``."""

    def __init__(self, root: Path, task: str) -> None:
        self.dir = root / task
        self.persisted = 0
        """Episodes of this task already on disk."""

    def flush(self, replay: EpisodeReplay) -> None:
        """Write the episodes added since the last flush; drop chunks no checkpoint needs.

        A chunk goes only once the ring had forgotten it at the *previous* flush, so the
        previous checkpoint stays restorable if writing the next one fails.
        """
        forgotten = self.persisted - replay.capacity
        if replay.added > self.persisted:
            arrays = replay.episodes_since(self.persisted)
            first = replay.added - len(arrays["action"])
            save_checkpoint(
                self.dir / f"{first:012d}-{len(arrays['action'])}.pt",
                {name: torch.from_numpy(a) for name, a in arrays.items()},
            )
            self.persisted = replay.added
        for start, path, count in self._chunks():
            if start + count <= forgotten:
                path.unlink()

    def restore(self, replay: EpisodeReplay, upto: int) -> tuple[list[Path], int]:
        """Refill ``replay`` with the episodes ``0..upto`` still on disk (newest kept).

        A chunk that cannot be read (truncated, corrupted) is skipped, and so is everything
        older than it: the ring keeps one contiguous run of the newest episodes. Returns the
        unreadable chunks and how many episodes the buffer holds fewer because of them.
        """
        unreadable: list[Path] = []
        gap_end = 0
        on_disk = 0
        for start, path, count in self._chunks():
            if start >= upto:  # written after the checkpoint (killed in between): not counted
                path.unlink()
                continue
            on_disk += min(count, upto - start)
            added = replay.added
            try:
                arrays = {k: v.numpy() for k, v in load_checkpoint(path).items()}
                if "actions" in arrays:  # chunks written before the field was named "action"
                    arrays["action"] = arrays.pop("actions")
                keep = min(len(arrays["action"]), upto - start)
                replay.added = start
                replay.add(EpisodeBatch("restored", **{k: arrays[k][:keep] for k in FIELDS},
                                        success=np.zeros(keep, bool), policy_version=0))
            except (UnreadableCheckpoint, KeyError, TypeError, ValueError, AttributeError):
                replay.added = added  # a chunk of the wrong shape wrote nothing
                unreadable.append(path.rename(path.with_suffix(".pt.unreadable")))
                gap_end = min(start + count, upto)
        replay.added = upto
        replay.keep_newest(upto - gap_end)
        self.persisted = upto
        return unreadable, min(on_disk, replay.capacity) - replay.episodes

    def _chunks(self) -> list[tuple[int, Path, int]]:
        """``(first episode, path, episodes)`` of each chunk, oldest first."""
        if not self.dir.is_dir():
            return []
        chunks = []
        for path in sorted(self.dir.glob("*-*.pt")):
            first, count = path.stem.split("-")
            chunks.append((int(first), path, int(count)))
        return chunks
