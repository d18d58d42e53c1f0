"""Per-task learning signals of the critic: which task's loss and gradient move, and how.

For one batch, at the learner's current weights, without stepping anything:

- ``signals/td_abs``: mean |TD error| of the task's rows (averaged over the critics);
- ``signals/grad_norm``: the norm of the gradient of the task's own critic loss over the
  shared critic parameters (those whose name has no ``task_``);
- ``signals/grad_cos``: that gradient's cosine with the joint gradient, the gradient of
  the weighted sum of the tasks' losses that the update follows;
- ``signals/conflict_cos``: the smallest cosine of that gradient with another task's own
  gradient, negative where two tasks' gradients conflict (where PCGrad would project one
  off the other); 1 when no other task has rows in the batch.

Each task's loss is taken on its own rows, so the K backward passes cost about one backward
of the batch together; the principal records the signals every
``metrics.signals_every_updates`` updates (docs/multitask.md reads them).
"""

from __future__ import annotations

import torch

from agent.learn.actor_critic import ActorCriticLearner, task_counts, task_gradients
from agent.update_types import Batch


def task_signals(learner: ActorCriticLearner, batch: Batch, task_weights: torch.Tensor
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The signals as per-task vectors by metric name, and which tasks had rows (the
    values of the others are 0 and mean nothing)."""
    counts = task_counts(batch.task, learner.num_tasks)
    present = (counts > 0).float()
    own, td_abs = learner.own_critic_losses(batch)
    shared = [p for name, p in learner.critics.named_parameters()
              if p.requires_grad and "task_" not in name]
    grads = torch.zeros(learner.num_tasks, sum(p.numel() for p in shared), device=counts.device)
    grads[list(own)] = task_gradients(list(own.values()), shared)
    weights = task_weights.to(counts.device) * present
    joint = (weights[:, None] * grads).sum(0) / weights.sum().clamp_min(1e-12)
    norms = grads.norm(dim=1)
    cosine = grads @ joint / (norms * joint.norm()).clamp_min(1e-12)
    signals = {"signals/td_abs": td_abs,
               "signals/grad_norm": norms, "signals/grad_cos": cosine,
               "signals/conflict_cos": smallest_pair_cosine(grads, present)}
    return signals, present


def smallest_pair_cosine(grads: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per task, the smallest cosine of its gradient (a row of ``grads``) with another
    present task's; 1 where no other task is present."""
    unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pairs = unit @ unit.T
    others = present[None, :].bool() & ~torch.eye(len(grads), dtype=torch.bool,
                                                   device=grads.device)
    return pairs.masked_fill(~others, 1.0).amin(dim=1).clamp(max=1.0)
