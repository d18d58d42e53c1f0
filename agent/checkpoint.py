"""Checkpoint files: written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import torch

from common.errors import first_line

LATEST = "latest.pt"
RUN_STATE_KEYS = ("spec", "learner", "encoder", "counters")
"""What a run's checkpoint (``Principal.state_dict``) holds at least."""


class UnreadableCheckpoint(ValueError):
    """A file that is missing, truncated, or not a checkpoint of the expected kind."""


class DiskFull(OSError):
    """A file could not be written for lack of space (a checkpoint's previous one is
    intact)."""


def as_disk_full(error: BaseException, where: str) -> DiskFull | None:
    """``error`` as a :class:`DiskFull` naming ``where`` when it is a lack of space."""
    if isinstance(error, DiskFull):
        return error
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(error.errno, f"{where}: no space left on device")
    return None


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file.

    The state is serialized in memory first, so that a failed write is an ``OSError`` of
    the file system. On any failure the temporary file is removed and ``path`` keeps its
    previous content; a full disk raises :class:`DiskFull` naming ``path``.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(buffer.getbuffer())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if (full := as_disk_full(exc, str(path))) is not None:
            raise full from None
        raise


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint; only tensors and plain containers are accepted.

    Raises :class:`UnreadableCheckpoint` naming ``path`` for anything torch cannot read.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, OSError...
        reason = first_line(exc)
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


def rng_state(rng: np.random.Generator) -> dict:
    """The random states a resume restores: ``rng``'s, torch's, and CUDA's if present."""
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_state(rng: np.random.Generator, state: dict) -> None:
    """Undo :func:`rng_state` (CUDA's only where CUDA is present)."""
    rng.bit_generator.state = state["numpy"]
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
