"""MPI learner ranks: whether this process is one, and its communicator.

mpi4py is imported only when the process was started by ``mpiexec`` (OpenMPI or PMIx
environment variables), so a plain ``python main.py`` never initializes MPI. Torch-free, so
that the command line answers (``--help``, bad input) without loading torch.
"""

from __future__ import annotations

import os
from typing import Any

MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE")


def mpi_world() -> Any | None:
    """``MPI.COMM_WORLD`` when started by mpiexec with more than one rank, else None."""
    if not any(name in os.environ for name in MPI_ENV):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
