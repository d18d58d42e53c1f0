"""Run under mpiexec: gradient averaging and parameter identity across learner ranks.

Each rank trains on its own random batches. Checks, on every rank:
1. the averaged gradient equals the mean of the per-rank gradients;
2. after several updates every rank holds bit-identical parameters.
Prints one JSON line from rank 0. ``python -m tests.mpi.check_sync sac`` checks the SAC
learner (its per-task temperatures are synced too).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from agent.learn.sac import SACLearner
from agent.learn.td3 import TD3Learner
from agent.ranks.gradient_averager import GradientAverager, flat_parameters
from agent.ranks.mpi import YIELD_WHILE_WAITING, mpi_world
from agent.update_types import Batch
from common.spec import Learner

comm = mpi_world()  # as main.py's learner ranks get it
rank = comm.Get_rank()
torch.manual_seed(0)  # same initial weights everywhere (main.py broadcasts rank 0's state)
kind = SACLearner if sys.argv[1:] == ["sac"] else TD3Learner
learner = kind(6, 4, 2, Learner(hidden_sizes=[32, 32], policy_delay=1, target_update_every=1),
               torch.device("cpu"))
generator = torch.Generator().manual_seed(100 + rank)  # different data per rank


def batch() -> Batch:
    n = 64
    return Batch(torch.randn(n, 6, generator=generator),
                 torch.rand(n, 4, generator=generator) * 2 - 1,
                 -(torch.rand(n, generator=generator) > 0.5).float(),
                 torch.randn(n, 6, generator=generator), torch.arange(n) % 2)


seen: list[tuple[np.ndarray, np.ndarray]] = []
averager = GradientAverager(comm)


def recording_sync(module: torch.nn.Module) -> None:
    before = torch.cat([p.grad.reshape(-1) for p in module.parameters()]).numpy().copy()
    averager(module)
    after = torch.cat([p.grad.reshape(-1) for p in module.parameters()]).numpy().copy()
    seen.append((before, after))


learner.grad_sync = recording_sync
for _ in range(5):
    learner.update(batch(), torch.tensor([0.5, 0.5]))

worst = 0.0
for before, after in seen:
    all_before = comm.allgather(before)
    worst = max(worst, float(np.abs(np.mean(all_before, axis=0) - after).max()))
params = np.concatenate([flat_parameters(m) for m in learner.networks().values()])
all_params = comm.gather(params, root=0)
if rank == 0:
    identical = all(np.array_equal(all_params[0], p) for p in all_params[1:])
    print(json.dumps({"ranks": comm.Get_size(), "allreduce_calls": averager.calls,
                      "max_mean_error": worst, "identical_parameters": identical,
                      "mpi_settings": {name: os.environ.get(name)
                                       for name in YIELD_WHILE_WAITING}}))
