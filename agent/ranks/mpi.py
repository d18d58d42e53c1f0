"""MPI learner ranks: whether this process is one, and its communicator.

mpi4py is imported only when the process was started by ``mpiexec`` (OpenMPI or PMIx
environment variables), so a plain ``python main.py`` never initializes MPI. Torch-free, so
that the command line answers (``--help``, bad input) without loading torch.
"""

from __future__ import annotations

import os
from typing import Any

MPI_ENV = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE")

YIELD_WHILE_WAITING = {"OMPI_MCA_mpi_yield_when_idle": "1",
                       "OMPI_MCA_threads_pthreads_yield_strategy": "nanosleep"}
"""Open MPI settings (defaults; the environment wins) under which a rank waiting in the
gradient Allreduce gives its core away instead of spinning: on 2 cores the observer then
runs there rather than preempting the other rank (bench.cpu_profile: 2 ranks went from
1.12x to 1.30x the plain single-thread update)."""


def mpi_world() -> Any | None:
    """``MPI.COMM_WORLD`` when started by mpiexec with more than one rank, else None."""
    if not any(name in os.environ for name in MPI_ENV):
        return None
    for name, value in YIELD_WHILE_WAITING.items():
        os.environ.setdefault(name, value)  # read by MPI_Init, which importing MPI runs
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
