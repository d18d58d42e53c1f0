"""Checkpoint files: written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

LATEST = "latest.pt"
RUN_STATE_KEYS = ("spec", "learner", "encoder", "counters")
"""What a run's checkpoint (``Principal.state_dict``) holds at least."""


class UnreadableCheckpoint(ValueError):
    """A file that is missing, truncated, or not a checkpoint of the expected kind."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint; only tensors and plain containers are accepted.

    Raises :class:`UnreadableCheckpoint` naming ``path`` for anything torch cannot read.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, OSError...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UnreadableCheckpoint(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(state, dict):
        raise UnreadableCheckpoint(f"{path}: not a checkpoint (holds a {type(state).__name__})")
    return state


def load_run_checkpoint(path: Path) -> dict:
    """A run's checkpoint (``checkpoints/*.pt``, not a replay chunk), else UnreadableCheckpoint."""
    state = load_checkpoint(path)
    missing = [key for key in RUN_STATE_KEYS if key not in state]
    if missing:
        raise UnreadableCheckpoint(f"{path}: not a run checkpoint (no {', '.join(missing)})")
    return state
