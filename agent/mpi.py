"""MPI learner ranks: who we are, parameter broadcast, gradient averaging on flat buffers.

mpi4py is imported only when the process was started by ``mpiexec`` (OpenMPI or PMIx
environment variables), so a plain ``python main.py`` never initializes MPI.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE")


def mpi_world() -> Any | None:
    """``MPI.COMM_WORLD`` when started by mpiexec with more than one rank, else None."""
    if not any(name in os.environ for name in MPI_ENV):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


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
