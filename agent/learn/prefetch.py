"""The next batch, sampled and encoded, and its TD targets, prepared on a second thread.

While the learner trains on one batch, a helper thread HER-samples the next one, encodes
it and computes its TD targets from the target networks (a quarter of an update's
FLOPs at 3x256). Torch kernels release the GIL, so on 2 cores the helper and the
collection of an observer share the second core. The targets may miss the Polyak step
of the update that ran meanwhile (one in ``target_update_every``); batch shares apply
from the batch after next.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import torch

from agent.learn.actor_critic import ActorCriticLearner
from agent.update_types import Batch

Prepared: TypeAlias = tuple[Batch, torch.Tensor | None]
"""A batch and its TD targets (None where the learner computes them itself: SAC's read the
actor, which every update moves)."""


class BatchPrefetcher:
    """``next(shares)`` returns a batch and its targets, prepared while the previous update
    ran. Installs a real lock as the learner's ``targets_lock``."""

    def __init__(self, sample: Callable[[np.ndarray], Batch], learner: ActorCriticLearner) -> None:
        self._sample, self._learner = sample, learner
        learner.targets_lock = threading.Lock()
        self._requests: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=1)
        self._ready: queue.Queue[Prepared | BaseException] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None
        """Started by the first ``next``; from then on one request is always outstanding."""

    def next(self, shares: np.ndarray) -> Prepared:
        """The prepared batch and targets (the first call prepares and waits); starts the
        next one."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="batch-prefetch",
                                            daemon=True)
            self._thread.start()
            self._requests.put(shares)
        prepared = self._ready.get()
        self._requests.put(shares)
        if isinstance(prepared, BaseException):
            raise prepared
        return prepared

    def _work(self) -> None:
        torch.set_num_threads(1)  # per thread under OpenMP: see observer/worker.py
        while (shares := self._requests.get()) is not None:
            try:
                batch = self._sample(shares)
                target = self._learner.td_target(batch) if self._learner.targets_ahead else None
                self._ready.put((batch, target))
            except BaseException as exc:  # raised on the learner's thread by next()
                self._ready.put(exc)

    def close(self) -> None:
        """Stop the helper thread (after the batch it is preparing)."""
        if self._thread is None:
            return
        self._ready.get()  # the batch being prepared frees the request slot
        self._requests.put(None)
        self._thread.join(timeout=30)
        self._thread = None
