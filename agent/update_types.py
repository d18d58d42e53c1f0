"""What a learner update takes and gives: a multi-task :class:`Batch` in, an
:class:`UpdateResult` out. Data modules (batching, prefetch, metrics) need only these."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """Encoded transitions of several tasks; ``task`` holds each row's task index."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    task: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in vars(self).values()))

    def rows(self, index: slice | torch.Tensor) -> Batch:
        """The rows ``index`` selects (a slice is a view)."""
        return Batch(*(t[index] for t in vars(self).values()))


@dataclass
class UpdateResult:
    """What one learner update reports. Detached tensors on the learner's device (callers
    decide when to pay for a sync); ``*_per_task`` vectors have one entry per task, and
    ``tasks_present`` marks the tasks that had rows in the batch."""

    critic_loss: torch.Tensor
    critic_loss_per_task: torch.Tensor
    q_mean: torch.Tensor
    q_mean_per_task: torch.Tensor
    target_mean: torch.Tensor
    tasks_present: torch.Tensor
    actor_loss: torch.Tensor | None = None
    """None when this update left the actor alone (TD3's policy delay)."""
    actor_loss_per_task: torch.Tensor | None = None
    algorithm_per_task: dict[str, torch.Tensor] = field(default_factory=dict)
    """An algorithm's own per-task values by metric name (SAC: ``sac/temperature``,
    ``sac/entropy``)."""

    def scalars(self) -> dict[str, torch.Tensor]:
        """Joint values by metric name."""
        named = {"losses/critic": self.critic_loss, "q/mean": self.q_mean,
                 "q/target_mean": self.target_mean}
        if self.actor_loss is not None:
            named["losses/actor"] = self.actor_loss
        return named

    def per_task(self) -> dict[str, torch.Tensor]:
        """Per-task vectors by metric name (recorded as ``<name>/<task>``)."""
        named = {"losses/critic": self.critic_loss_per_task, "q/mean": self.q_mean_per_task}
        if self.actor_loss_per_task is not None:
            named["losses/actor"] = self.actor_loss_per_task
        return named | self.algorithm_per_task

    @staticmethod
    def mean(results: list[UpdateResult]) -> UpdateResult:
        """Several updates as one: joint values averaged over the updates that report
        them, per-task values over the updates in which that task was present."""

        def joint(values: list[torch.Tensor | None]) -> torch.Tensor | None:
            kept = [v for v in values if v is not None]
            return torch.stack(kept).mean() if kept else None

        def per_task(values: list[torch.Tensor | None]) -> torch.Tensor | None:
            rows = [(v, r.tasks_present) for v, r in zip(values, results, strict=True)
                    if v is not None]
            if not rows:
                return None
            return sum(v * mask for v, mask in rows) / sum(m for _, m in rows).clamp_min(1)

        names = dict.fromkeys(name for r in results for name in r.algorithm_per_task)
        return UpdateResult(
            critic_loss=joint([r.critic_loss for r in results]),
            critic_loss_per_task=per_task([r.critic_loss_per_task for r in results]),
            q_mean=joint([r.q_mean for r in results]),
            q_mean_per_task=per_task([r.q_mean_per_task for r in results]),
            target_mean=joint([r.target_mean for r in results]),
            tasks_present=torch.stack([r.tasks_present for r in results]).amax(0),
            actor_loss=joint([r.actor_loss for r in results]),
            actor_loss_per_task=per_task([r.actor_loss_per_task for r in results]),
            algorithm_per_task={name: per_task([r.algorithm_per_task.get(name)
                                                for r in results]) for name in names},
        )
