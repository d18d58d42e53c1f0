"""First-order meta-updates across tasks (``meta.update``): Reptile and FOMAML.

From the shared weights θ, each task i in the batch shares runs ``inner_steps`` (k) TD3
updates on batches of task i only, giving adapted weights θ_i. Then the outer step:

- ``reptile`` (Nichol et al. 2018): θ ← θ + ε (mean_i θ_i − θ).
- ``fomaml`` (Finn et al. 2017, first order): the mean over tasks of ∇L_i(θ_i), the gradient
  taken on a fresh batch of task i at the adapted weights, is the gradient of an outer Adam
  step with learning rate ε × the learner's (the weights move once per k·K inner updates,
  so FOMAML learns slower per update than Reptile; docs/multitask.md has the figures).

With k=1, plain SGD and ε=1, Reptile is exactly one step on the averaged gradient.

Decisions (docs/multitask.md):
- Target networks are shared and not adapted: inner steps bootstrap from them; after the
  outer step they take one Polyak step per ``target_update_every`` updates that passed.
- The actor steps every ``policy_delay``-th inner update *of each task* (a global count
  would skip the same tasks every time), and the outer mean is weighted by the task
  weighting (``mean``: equal).
- Optimizer state: the inner optimizer (``meta.inner_optimizer``) is one for all tasks and
  keeps its state (Adam moments) across tasks and outer steps; Reptile's outer step is a
  plain interpolation with no state; FOMAML's outer Adam has its own state (checkpointed).
- Every inner step counts as a learner update (the update-to-data ratio counts gradient steps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from agent.learn.actor_critic import ActorCriticLearner
from agent.update_types import Batch, UpdateResult
from common.spec import Meta as MetaConfig


def _task_shares(tasks: Sequence[int], weights: Sequence[float] | None) -> list[float]:
    """Weights of ``tasks`` normalized to sum to 1 (equal when ``weights`` is None)."""
    if weights is None:
        return [1.0 / len(tasks)] * len(tasks)
    total = sum(float(weights[t]) for t in tasks)
    return [float(weights[t]) / total for t in tasks]


def _mean_over_tasks(
    params: Sequence[torch.Tensor],
    tasks: Sequence[int],
    adapt: Callable[[int], None],
    contribution: Callable[[int], Sequence[torch.Tensor]],
    weights: Sequence[float] | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """For each task: back to the start, ``adapt`` (moves ``params`` in place), then add the
    task's ``contribution`` to a (task-weighted) mean. Returns the start and the mean;
    ``params`` are left at the last task's adapted weights."""
    start = [p.detach().clone() for p in params]
    mean = [torch.zeros_like(p) for p in params]
    for task, share in zip(tasks, _task_shares(tasks, weights), strict=True):
        _assign(params, start)
        adapt(task)
        torch._foreach_add_(mean, list(contribution(task)), alpha=share)
    return start, mean


def reptile_step(
    params: Sequence[torch.Tensor],
    tasks: Sequence[int],
    adapt: Callable[[int], None],
    epsilon: float,
    weights: Sequence[float] | None = None,
) -> None:
    """Adapt from the same start for each task (``adapt`` moves ``params`` in place), then
    move the start ε of the way to the (task-weighted) mean adapted weights."""
    start, mean = _mean_over_tasks(params, tasks, adapt,
                                   lambda task: [p.detach() for p in params], weights)
    _assign(params, [s + epsilon * (m - s) for s, m in zip(start, mean, strict=True)])


def fomaml_gradient(
    params: Sequence[torch.Tensor],
    tasks: Sequence[int],
    adapt: Callable[[int], None],
    query_gradients: Callable[[int], Sequence[torch.Tensor]],
    weights: Sequence[float] | None = None,
) -> list[torch.Tensor]:
    """Adapt from the same start for each task and take the query gradient at the adapted
    weights; returns the (task-weighted) mean query gradient, ``params`` back at the start."""
    start, mean = _mean_over_tasks(params, tasks, adapt, query_gradients, weights)
    _assign(params, start)
    return mean


@torch.no_grad()
def _assign(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    torch._foreach_copy_(list(params), list(values))


class MetaUpdater:
    """One meta-update of an :class:`~agent.learn.actor_critic.ActorCriticLearner` over the tasks
    given to :meth:`step`."""

    def __init__(self, learner: ActorCriticLearner, config: MetaConfig) -> None:
        self.learner, self.config = learner, config
        actor, critics = learner.trainable_parameters()
        self.outer = torch.optim.Adam([
            {"params": actor, "lr": config.outer_step * learner.actor_lr},
            {"params": critics, "lr": config.outer_step * learner.critic_lr},
        ])
        """FOMAML's outer optimizer (unused by Reptile)."""
        self.inner_updates: dict[int, int] = {}
        """Inner updates per task: the actor steps every ``policy_delay``-th of a task's own."""

    def step(
        self, tasks: Sequence[int], sample: Callable[[int], Batch], weights: torch.Tensor
    ) -> UpdateResult:
        """``sample(task)`` gives a batch of one task; ``weights`` (per task) weight the outer
        mean. Returns the inner updates as one (per-task values hold each task's own inner
        updates)."""
        learner, cfg = self.learner, self.config
        outs: list[UpdateResult] = []
        before = learner.updates

        def adapt(task: int) -> None:
            for _ in range(cfg.inner_steps):
                self.inner_updates[task] = self.inner_updates.get(task, 0) + 1
                actor = self.inner_updates[task] % learner.actor_update_every == 0
                outs.append(learner.update(sample(task), weights, update_targets=False,
                                           update_actor=actor))

        params = learner.parameters()
        shares = weights.tolist()
        if cfg.update == "reptile":
            reptile_step(params, tasks, adapt, cfg.outer_step, shares)
        else:
            mean = fomaml_gradient(params, tasks, adapt,
                                   lambda task: learner.gradients(sample(task), weights), shares)
            for param, grad in zip(params, mean, strict=True):
                param.grad = grad
            self.outer.step()
        every = learner.config.target_update_every
        for _ in range(learner.updates // every - before // every):
            learner.soft_update()
        return UpdateResult.mean(outs)

    def state_dict(self) -> dict:
        return {"outer": self.outer.state_dict(),
                "inner_updates": {str(k): v for k, v in self.inner_updates.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.outer.load_state_dict(state["outer"])
        self.inner_updates = {int(k): int(v) for k, v in state["inner_updates"].items()}
