"""MPI learner ranks on one node: rank 0 (the principal agent) drives ranks 1..N-1.

Rank 0 receives every episode over RPC. It deals each task's episode batches round-robin
to the ranks (its own share stays in its replay), so each rank samples from a disjoint
shard and the N batches of an update together cover N x batch_size transitions. Before
every update rank 0 scatters one :class:`Control` per rank: the new episodes for that rank,
the normalizer statistics when they changed, batch shares and task weights. Every rank
then runs the same TD3 update; gradients are averaged by one Allreduce per network, so
parameters stay identical. Normalizer statistics are computed once, on rank 0, over all
episodes (the merge of every rank's sums) and broadcast.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.learn.build import build_batcher, build_learner
from agent.ranks.gradient_averager import GradientAverager
from agent.replay.replay_store import ReplayChunks
from common.messages import EpisodeBatch
from common.policy import build_encoder
from common.spec import validate_spec


def replay_root(run_dir: Path, rank: int) -> Path:
    """Where rank ``rank`` persists its replay shard."""
    return run_dir / "checkpoints" / ("replay" if rank == 0 else f"replay-rank{rank}")


@dataclass
class Setup:
    """Rank 0 → all, once: everything a learner rank needs to start identical to rank 0."""

    spec: dict
    run_dir: str
    learner: dict
    replay_episodes: list[int] | None


@dataclass
class Control:
    """Rank 0 → rank r, before each update (``shares`` set), at checkpoints and at the end."""

    episodes: list[EpisodeBatch] = field(default_factory=list)
    encoder: dict | None = None
    shares: np.ndarray | None = None
    weights: np.ndarray | None = None
    flush_replay: bool = False
    stop: bool = False


class RankGroup:
    """Rank 0's handle on the learner ranks."""

    def __init__(self, comm: Any, tasks: list[str]) -> None:
        self.comm, self.size = comm, comm.Get_size()
        self.tasks = tasks
        self._outbox: list[list[EpisodeBatch]] = [[] for _ in range(self.size)]
        self._next_rank = dict.fromkeys(tasks, 0)
        self._received = np.zeros(self.size, bool)
        self._encoder: dict | None = None
        self.started = self.stopped = False

    def start(self, spec: dict, run_dir: Path, learner: dict, replay_episodes: list | None) -> None:
        """Broadcast the starting point: the ranks begin identical to rank 0."""
        self.comm.bcast(Setup(spec, str(run_dir), learner, replay_episodes), root=0)
        self.started = True

    def route(self, batch: EpisodeBatch) -> bool:
        """Deal ``batch`` to the next rank for its task; True if rank 0 keeps it."""
        rank = self._next_rank[batch.task]
        self._next_rank[batch.task] = (rank + 1) % self.size
        self._received[rank] = True
        if rank == 0:
            return True
        self._outbox[rank].append(batch)
        return False

    def ready(self) -> bool:
        """Every rank has data to sample from."""
        return bool(self._received.all())

    def mark_restored(self, replay_episodes_by_rank: list[list[int]] | None,
                      rank0_has_data: bool) -> None:
        """Ranks whose replay shard comes back from a checkpoint already have data."""
        self._received[0] |= rank0_has_data
        for rank, counts in enumerate(replay_episodes_by_rank or [], start=1):
            self._received[rank] |= sum(counts) > 0

    @contextlib.contextmanager
    def abort_on_error(self) -> Iterator[None]:
        """Inside a collective the other ranks cannot be told: abort the whole job."""
        try:
            yield
        except BaseException as exc:
            print(f"error: learner rank 0 failed inside a collective ({exc!r}); "
                  "aborting every rank", file=sys.stderr, flush=True)
            self.comm.Abort(1)

    def encoder_changed(self, state: dict) -> None:
        self._encoder = state

    def update(self, shares: np.ndarray, weights: np.ndarray) -> None:
        """Tell every rank to do one update (rank 0 does its own right after)."""
        self._scatter(shares=shares, weights=weights)

    def flush_replay(self) -> list[list[int]]:
        """Ranks 1..N-1 persist their replay shards; returns their per-task episode counts."""
        self._scatter(flush_replay=True)
        return self.comm.gather(None, root=0)[1:]

    def stop(self) -> None:
        """Release the ranks: they return from :func:`run_learner_rank`."""
        if not self.stopped:
            self.stopped = True
            self._scatter(stop=True)

    def close(self) -> None:
        """Stop the ranks if they started, else tell them not to (rank 0 failed first)."""
        if self.started:
            self.stop()
        elif not self.stopped:
            self.stopped = True
            self.comm.bcast(None, root=0)

    def _scatter(self, **fields: Any) -> None:
        controls = [None] + [
            Control(self._outbox[rank], self._encoder, **fields) for rank in range(1, self.size)
        ]
        self._outbox = [[] for _ in range(self.size)]
        self._encoder = None
        self.comm.scatter(controls, root=0)


def run_learner_rank(comm: Any) -> int:
    """Ranks 1..N-1: learn in lockstep with rank 0 until it says stop.

    Any error here would leave rank 0 waiting in a collective: it aborts the whole job.
    """
    for sig in (signal.SIGINT, signal.SIGTERM):  # mpiexec forwards them; rank 0 decides
        signal.signal(sig, signal.SIG_IGN)
    setup: Setup | None = comm.bcast(None, root=0)
    if setup is None:
        return 2
    try:
        return _learn_in_lockstep(comm, setup)
    except BaseException as exc:
        print(f"error: learner rank {comm.Get_rank()} failed ({exc!r}); aborting every rank",
              file=sys.stderr, flush=True)
        comm.Abort(1)
        raise


def shard_capacity(capacity_per_task: int, ranks: int) -> int:
    """Each rank keeps its share, so all ranks together hold ``capacity_per_task``."""
    return max(1, capacity_per_task // ranks)


def _learn_in_lockstep(comm: Any, setup: Setup) -> int:
    rank = comm.Get_rank()
    spec = validate_spec(setup.spec, "spec from rank 0")
    torch.set_num_threads(spec.learner.torch_threads)
    tasks = list(spec.tasks)
    encoder = build_encoder(spec)
    learner = build_learner(spec, encoder, GradientAverager(comm))
    learner.load_state_dict(setup.learner)
    capacity = shard_capacity(spec.replay.capacity_per_task, comm.Get_size())
    batcher = build_batcher(spec, encoder, capacity, np.random.default_rng([spec.seed, rank]))
    replays = batcher.replays
    chunks = [ReplayChunks(replay_root(Path(setup.run_dir), rank), t) for t in tasks]
    counts = setup.replay_episodes[rank - 1] if setup.replay_episodes else None
    if counts is not None:
        for task, chunk, replay, upto in zip(tasks, chunks, replays, counts, strict=True):
            unreadable, lost = chunk.restore(replay, int(upto))
            if unreadable:
                print(f"warning: rank {rank}: {task}: resumed without {lost} replay episode(s);"
                      f" unreadable: {', '.join(map(str, unreadable))}", file=sys.stderr)
    while True:
        control: Control = comm.scatter(None, root=0)
        for batch in control.episodes:
            replays[tasks.index(batch.task)].add(batch)
        if control.encoder is not None:
            encoder.load_state_dict(control.encoder)
        if control.flush_replay:
            for chunk, replay in zip(chunks, replays, strict=True):
                chunk.flush(replay)
            comm.gather([replay.added for replay in replays], root=0)
        if control.stop:
            return 0
        if control.shares is not None:
            batch = batcher.sample(spec.learner.batch_size, control.shares)
            learner.update(batch.to(learner.device), torch.as_tensor(control.weights))
