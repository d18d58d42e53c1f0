"""Checkpoint files: written atomically, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

LATEST = "latest.pt"


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` via a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint; only tensors and plain containers are accepted."""
    return torch.load(path, map_location="cpu", weights_only=True)
