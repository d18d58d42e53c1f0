"""Multi-task SAC (``learner.algo: sac``): twin critics, a tanh-Gaussian actor and one learned
entropy temperature per task (MT-SAC, as in the Meta-World and CARE papers).

Shares the actor-critic machinery of :mod:`agent.learn.actor_critic` (per-task losses, task
weights, PCGrad, gradient sync, meta-updates, checkpoints) through its hooks: only the TD
target, the actor loss and the temperature step after it differ. Each task's temperature
α_t follows its own loss ``-log α_t (log π + H_t)`` over its rows (H_t: the task's entropy
target), so tasks that explore enough stop paying for entropy while others still do.

Decisions: targets are not clipped to the return range (see :meth:`SACLearner.td_target`);
the actor steps every update (no policy delay) and has no target network; the temperatures
follow plain SGD on log α and step in every update, a meta-update's inner steps included,
but are not part of the weights a meta-update interpolates (an update moves only the α of
tasks with rows in its batch). TD targets are not computed ahead on the prefetch thread: they
read the actor, which every update moves.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from agent.learn.actor_critic import ActorCriticLearner, per_task_mean, task_counts
from agent.update_types import Batch


class Temperature(nn.Module):
    """Per-task entropy temperatures α_t = exp(``task_log_alpha[t]``) (named ``task_`` so
    that transfer maps them by task name)."""

    def __init__(self, num_tasks: int, initial: float) -> None:
        super().__init__()
        self.task_log_alpha = nn.Parameter(torch.full((num_tasks,), math.log(initial)))

    def forward(self) -> torch.Tensor:
        return self.task_log_alpha.exp()


class SACLearner(ActorCriticLearner):
    """Twin critics, a tanh-Gaussian actor, soft targets and per-task temperatures."""

    num_critics = 2
    stochastic_actor = True
    targets_ahead = False

    def __init__(self, input_dim: int, action_dim: int, num_tasks: int, *args, **kwargs) -> None:
        super().__init__(input_dim, action_dim, num_tasks, *args, **kwargs)
        cfg = self.config
        self.temperature = Temperature(num_tasks, cfg.initial_temperature).to(self.device)
        self.temperature_opt = torch.optim.SGD(self.temperature.parameters(), lr=self.actor_lr)
        """Plain SGD, no momentum: a task's α moves only in updates with rows of that task
        (Adam's moments would keep moving it in updates without, e.g. a meta-update's inner
        steps on other tasks)."""
        self.target_entropy = cfg.target_entropy_per_action_dim * self._action_sizes
        """Each task's entropy target (its own action size times the per-dimension target)."""

    def networks(self) -> dict[str, nn.Module]:
        return super().networks() | {"temperature": self.temperature}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return super().optimizers() | {"temperature_opt": self.temperature_opt}

    @torch.no_grad()
    def td_target(self, batch: Batch) -> torch.Tensor:
        """``r + γ (min(Q1', Q2')(s', a') - α log π(a'|s'))`` with ``a' ~ π(s')``. Not clipped
        to the return range of -1/0 rewards as TD3's is: the entropy bonus makes soft values
        leave that range (above 0 where the policy is wide, below -1/(1-γ) where narrow)."""
        next_action, log_prob = self.actor.sample(batch.next_obs)
        bonus = self.temperature()[batch.task] * log_prob
        with self.targets_lock:
            q1, q2 = (q(batch.next_obs, next_action) for q in self.critics_target)
        return batch.reward + self.config.gamma * (torch.minimum(q1, q2) - bonus)

    def _actor_losses(self, batch: Batch, counts: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Per-task ``α log π(a|s) - min(Q1, Q2)(s, a)`` (a reparameterized) plus the action
        penalty; keeps log π (detached) for the temperature step."""
        action, log_prob = self.actor.sample(batch.obs)
        alpha = self.temperature().detach()[batch.task]
        per_row = alpha * log_prob - self._smallest_q(batch.obs, action, self.critics) \
            + self._action_penalty(action, batch.task)
        return per_task_mean(per_row, batch.task, counts), {"log_prob": log_prob.detach()}

    def _after_actor_step(self, batch: Batch, step: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One step of each present task's ``-log α_t (log π + H)``; reports the tasks'
        entropy estimates (mean -log π over their rows)."""
        log_prob = step["log_prob"]
        counts = task_counts(batch.task, self.num_tasks)
        log_alpha = self.temperature.task_log_alpha[batch.task]
        target = self.target_entropy[batch.task]
        per_task = per_task_mean(-log_alpha * (log_prob + target), batch.task, counts)
        self.temperature_opt.zero_grad(set_to_none=True)
        per_task.sum().backward()  # tasks' temperatures are independent: no weighting
        self.grad_sync(self.temperature)
        self.temperature_opt.step()
        return {"sac/entropy": per_task_mean(-log_prob, batch.task, counts)}

    def _algorithm_per_task(self) -> dict[str, torch.Tensor]:
        """Each task's temperature α after this update."""
        return {"sac/temperature": self.temperature().detach()}
