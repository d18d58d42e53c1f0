"""Joint multi-task TD3 (or DDPG) update: a pure function of a batch and per-task weights.

No RPC, MPI, metrics sinks or envs in here. Gradient synchronisation across learner ranks
is injected as ``grad_sync`` and called between ``backward()`` and ``step()``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from agent.networks import Actor, Critic
from agent.spec import Learner as LearnerConfig

GradSync = Callable[[nn.Module], None]


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


def per_task_mean(values: torch.Tensor, task: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the rows of each task (0 for a task with no rows);
    ``counts`` are the rows per task (:func:`task_counts`)."""
    sums = torch.zeros(len(counts), device=values.device).index_add_(0, task, values)
    return sums / counts.clamp_min(1)


def task_counts(task: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """Rows per task as floats (``index_add_`` rather than ``bincount``: no device sync)."""
    ones = torch.ones_like(task, dtype=torch.float32)
    return torch.zeros(num_tasks, device=task.device).index_add_(0, task, ones)


def combine(per_task: torch.Tensor, weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Weighted sum over tasks present in the batch, weights renormalized over them."""
    w = weights * present
    return (per_task * w).sum() / w.sum().clamp_min(1e-12)


def td3_target(
    reward: torch.Tensor,
    next_q1: torch.Tensor,
    next_q2: torch.Tensor | None,
    gamma: float,
) -> torch.Tensor:
    """``r + γ min(Q1', Q2')`` clipped to the return range ``[-1/(1-γ), 0]`` of -1/0 rewards."""
    next_q = next_q1 if next_q2 is None else torch.minimum(next_q1, next_q2)
    return (reward + gamma * next_q).clamp(-1.0 / (1.0 - gamma), 0.0)


class TD3Learner:
    """Actor, twin critics, their targets and optimizers; :meth:`update` does one step."""

    def __init__(
        self,
        input_dim: int,
        action_dim: int,
        num_tasks: int,
        config: LearnerConfig,
        device: torch.device,
        grad_sync: GradSync | None = None,
    ) -> None:
        self.config, self.device, self.num_tasks = config, device, num_tasks
        self.twin = config.algo == "td3"
        self.grad_sync = grad_sync or (lambda module: None)
        hidden = config.hidden_sizes
        self.actor = Actor(input_dim, action_dim, hidden).to(device)
        self.critics = nn.ModuleList(
            Critic(input_dim, action_dim, hidden) for _ in range(2 if self.twin else 1)
        ).to(device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=config.critic_lr)
        self.updates = 0
        """Critic updates done so far: the policy version observers see."""

    def update(self, batch: Batch, task_weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """One TD3 step on ``batch``; per-task losses combined with ``task_weights``.

        Returns detached tensors (per-task vectors where noted) so callers decide when to
        pay for a device sync.
        """
        cfg = self.config
        weights = task_weights.to(self.device)
        counts = task_counts(batch.task, self.num_tasks)
        present = (counts > 0).float()
        with torch.no_grad():
            next_action = self.actor_target(batch.next_obs)
            if self.twin:
                noise = (torch.randn_like(next_action) * cfg.target_noise).clamp(
                    -cfg.target_noise_clip, cfg.target_noise_clip
                )
                next_action = (next_action + noise).clamp(-1.0, 1.0)
            next_qs = [q(batch.next_obs, next_action) for q in self.critics_target]
            target = td3_target(
                batch.reward, next_qs[0], next_qs[1] if self.twin else None, cfg.gamma
            )
        qs = [q(batch.obs, batch.action) for q in self.critics]
        td_error = sum(F.mse_loss(q, target, reduction="none") for q in qs)
        critic_per_task = per_task_mean(td_error, batch.task, counts)
        critic_loss = combine(critic_per_task, weights, present)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.grad_sync(self.critics)
        self.critic_opt.step()
        self.updates += 1
        metrics = {
            "losses/critic": critic_loss.detach(),
            "losses/critic_per_task": critic_per_task.detach(),
            "q/mean": qs[0].detach().mean(),
            "q/mean_per_task": per_task_mean(qs[0].detach(), batch.task, counts),
            "q/target_mean": target.mean(),
        }
        delay = cfg.policy_delay if self.twin else 1
        if self.updates % delay == 0:
            metrics.update(self._update_actor(batch, weights, counts, present))
        if self.updates % cfg.target_update_every == 0:
            self._soft_update()
        return metrics

    def _update_actor(
        self, batch: Batch, weights: torch.Tensor, counts: torch.Tensor, present: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        action = self.actor(batch.obs)
        self.critics.requires_grad_(False)  # the actor step needs no critic weight gradients
        q = self.critics[0](batch.obs, action)
        self.critics.requires_grad_(True)
        per_row = -q + self.config.action_l2 * action.pow(2).mean(-1)
        actor_per_task = per_task_mean(per_row, batch.task, counts)
        actor_loss = combine(actor_per_task, weights, present)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.grad_sync(self.actor)
        self.actor_opt.step()
        return {
            "losses/actor": actor_loss.detach(),
            "losses/actor_per_task": actor_per_task.detach(),
        }

    @torch.no_grad()
    def _soft_update(self) -> None:
        tau = self.config.tau
        for net, target in ((self.actor, self.actor_target), (self.critics, self.critics_target)):
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), tau)

    def actor_state_cpu(self) -> dict[str, torch.Tensor]:
        """A detached CPU copy of the actor weights (the learner's modules are untouched)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.actor.state_dict().items()}

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critics": self.critics.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critics_target": self.critics_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.updates = int(state["updates"])
