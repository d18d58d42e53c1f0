"""Gradient averaging across MPI learner ranks: one Allreduce per network on a flat buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def _flat(tensors: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([t.detach().reshape(-1).float().cpu() for t in tensors]).numpy()


def _unflat(flat: np.ndarray, tensors: list[torch.Tensor]) -> None:
    offset = 0
    source = torch.from_numpy(flat)
    for tensor in tensors:
        n = tensor.numel()
        tensor.copy_(source[offset : offset + n].view_as(tensor))
        offset += n


class GradientAverager:
    """``grad_sync`` for the learner: one Allreduce per network on one flat float32 buffer."""

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self.comm, self.size, self.in_place = comm, comm.Get_size(), MPI.IN_PLACE
        self.calls = 0
        """Allreduce calls made (one per network per update)."""

    def __call__(self, module: nn.Module) -> None:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        flat = _flat(grads)
        self.comm.Allreduce(self.in_place, flat)  # default op: SUM
        flat /= self.size
        with torch.no_grad():
            _unflat(flat, grads)
        self.calls += 1


def flat_parameters(module: nn.Module) -> np.ndarray:
    """All parameters of ``module`` in one float32 vector (for checks and tests)."""
    return _flat(list(module.parameters()))
