"""Running mean/std normalizers and the encoder that turns (task, obs, goal) into net input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from common.envs import TaskShape


class RunningNormalizer:
    """Mean/std from running sums (mergeable across processes), with a std floor and clip."""

    def __init__(self, size: int, eps: float = 0.01, clip: float = 5.0) -> None:
        self.size, self.eps, self.clip = size, eps, clip
        self.sum = np.zeros(size, np.float64)
        self.sumsq = np.zeros(size, np.float64)
        self.count = 0.0
        self._refresh()

    def _refresh(self) -> None:
        n = max(self.count, 1.0)
        self.mean = (self.sum / n).astype(np.float32)
        var = np.maximum(self.sumsq / n - np.square(self.sum / n), 0.0)
        self.std = np.maximum(np.sqrt(var), self.eps).astype(np.float32)

    def update(self, values: np.ndarray) -> None:
        """Add a batch of rows (any leading shape, last axis = size)."""
        flat = np.asarray(values, np.float64).reshape(-1, self.size)
        self.sum += flat.sum(0)
        self.sumsq += np.square(flat).sum(0)
        self.count += flat.shape[0]
        self._refresh()

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """(x - mean) / std clipped to [-clip, clip], float32."""
        return np.clip((values - self.mean) / self.std, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "sum": torch.from_numpy(self.sum.copy()),
            "sumsq": torch.from_numpy(self.sumsq.copy()),
            "count": torch.tensor(self.count, dtype=torch.float64),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.sum = state["sum"].numpy().astype(np.float64).copy()
        self.sumsq = state["sumsq"].numpy().astype(np.float64).copy()
        self.count = float(state["count"])
        self._refresh()


class ObservationEncoder:
    """Per-task obs/goal normalizers; pads obs and goals to the largest task's and appends a
    task one-hot. Actions of tasks with fewer action dimensions are padded with zeros.

    Net input layout: ``[normalized obs, zero padded | normalized goal, zero padded | task
    one-hot]``.
    """

    def __init__(self, shapes: Sequence[TaskShape], eps: float, clip: float) -> None:
        self.shapes = list(shapes)
        self.num_tasks = len(shapes)
        self.obs_dim = max(s.obs_dim for s in shapes)
        self.goal_dim = max(s.goal_dim for s in shapes)
        self.action_dims = [s.action_dim for s in shapes]
        self.action_dim = max(self.action_dims)
        self.input_dim = self.obs_dim + self.goal_dim + self.num_tasks
        self.obs_norm = [RunningNormalizer(s.obs_dim, eps, clip) for s in shapes]
        self.goal_norm = [RunningNormalizer(s.goal_dim, eps, clip) for s in shapes]

    def update(self, task: int, obs: np.ndarray, goals: np.ndarray) -> None:
        """Fold one task's observations and goals into its statistics."""
        self.obs_norm[task].update(obs)
        self.goal_norm[task].update(goals)

    def encode(self, task: int, obs: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Rows of net input for ``task`` from raw ``obs`` (n, d_task) and ``goal`` (n, g)."""
        n = obs.shape[0]
        out = np.zeros((n, self.input_dim), np.float32)
        out[:, : obs.shape[1]] = self.obs_norm[task].normalize(obs)
        out[:, self.obs_dim : self.obs_dim + goal.shape[1]] = self.goal_norm[task].normalize(goal)
        out[:, self.obs_dim + self.goal_dim + task] = 1.0
        return out

    def pad_action(self, task: int, action: np.ndarray) -> np.ndarray:
        """``task``'s actions (any leading shape) zero-padded to :attr:`action_dim`."""
        missing = self.action_dim - action.shape[-1]
        if missing == 0:
            return action
        return np.concatenate([action, np.zeros((*action.shape[:-1], missing), action.dtype)], -1)

    def state_dict(self) -> dict[str, list[dict[str, torch.Tensor]]]:
        return {
            "obs": [n.state_dict() for n in self.obs_norm],
            "goal": [n.state_dict() for n in self.goal_norm],
        }

    def load_state_dict(self, state: dict[str, list[dict[str, torch.Tensor]]]) -> None:
        for norm, s in zip(self.obs_norm, state["obs"], strict=True):
            norm.load_state_dict(s)
        for norm, s in zip(self.goal_norm, state["goal"], strict=True):
            norm.load_state_dict(s)
