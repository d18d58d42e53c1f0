"""The task mix: which tasks the observers collect and how much each weighs in the loss.

The spec's strategies (meta/: scheduler and weighting) with their feedback, and
what each task got since the last evaluation (``collect_share``, ``weight``)."""

from __future__ import annotations

import numpy as np

from agent.update_types import UpdateResult
from common.messages import EpisodeBatch
from common.spec import Spec
from meta.scheduler import build_scheduler
from meta.weighting import build_weighting

LOSS_FEEDBACK = ("loss", "famo")
"""Weightings that need every update's per-task losses (one device sync per update)."""
DEFAULT_NOISE_FREE_SHARE = 0.1


def noise_free_share(spec: Spec) -> float:
    """``scheduler.noise_free_share``, or by default 0.1 when a strategy needs success
    feedback and 0 otherwise (uniform runs keep every episode exploring)."""
    if spec.scheduler.noise_free_share is not None:
        return spec.scheduler.noise_free_share
    return DEFAULT_NOISE_FREE_SHARE if spec.needs_success_feedback() else 0.0


class TaskMix:
    """Scheduler + weighting, fed by arriving episodes and finished updates."""

    def __init__(self, spec: Spec) -> None:
        self.tasks = list(spec.tasks)
        self.scheduler = build_scheduler(spec.scheduler, self.tasks, spec.seed)
        self.weighting = build_weighting(spec.weighting, len(self.tasks), spec.scheduler)
        self.noise_free_share = noise_free_share(spec)
        self.wants_losses = spec.weighting.name in LOSS_FEEDBACK
        self._reset_eval_window()

    def _reset_eval_window(self) -> None:
        self._episodes = np.zeros(len(self.tasks))
        self._weight_sum = np.zeros(len(self.tasks))
        self._updates = 0

    def next_order(self, episodes_per_task: int, rng: np.random.Generator,
                   ) -> tuple[list[tuple[str, int]], bool]:
        """The scheduler's next task list, and whether it runs with exploration noise."""
        explore = bool(rng.random() >= self.noise_free_share)
        return self.scheduler.next_order(episodes_per_task), explore

    def batch_shares(self) -> np.ndarray:
        return self.scheduler.batch_shares()

    def weights(self) -> np.ndarray:
        return self.weighting.weights()

    def episodes_arrived(self, task: int, batch: EpisodeBatch, noise_free: bool) -> None:
        """Count collected episodes of task index ``task``; noise-free ones are the
        strategies' success feedback."""
        self._episodes[task] += batch.num_episodes
        if noise_free:
            self.scheduler.record_success(task, batch.success)
            self.weighting.record_success(task, batch.success)

    def update_done(self, result: UpdateResult, weights: np.ndarray) -> None:
        """Feedback from one learner update (its per-task critic losses), and the weights it
        gave each task (``weights`` renormalized over the tasks in its batch)."""
        present = result.tasks_present.cpu().numpy() > 0
        effective = np.where(present, weights, 0.0)
        self._weight_sum += effective / max(effective.sum(), 1e-12)
        self._updates += 1
        if self.wants_losses:
            losses = result.critic_loss_per_task.cpu().numpy().astype(float)
            self.weighting.record_losses(np.where(present, losses, np.nan))

    def eval_fields(self) -> dict[str, dict[str, float]]:
        """Per task: share of episodes collected and mean update weight since the last
        call (the last evaluation); then starts a new window."""
        total = self._episodes.sum()
        fields = {
            task: {
                "collect_share": float(self._episodes[i] / total) if total else 0.0,
                "weight": float(self._weight_sum[i] / self._updates) if self._updates
                else float(self.weights()[i]),
            }
            for i, task in enumerate(self.tasks)
        }
        self._reset_eval_window()
        return fields

    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict(),
                "weighting": self.weighting.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.weighting.load_state_dict(state["weighting"])
