"""The joint multi-task actor-critic update: a pure function of a batch and per-task weights.

:class:`ActorCriticLearner` holds the actor, the critics, their targets and optimizers, and
makes one update: per-task critic losses combined with the task weights, an actor step
every :attr:`~ActorCriticLearner.actor_update_every` updates, a Polyak step of the targets
every ``learner.target_update_every``. The algorithms (:mod:`agent.learn.td3`: DDPG and TD3;
:mod:`agent.learn.sac`: SAC) override a few named hooks: how many critics, the TD target's
next action, the actor loss, what follows an actor step, and their own metrics.

No RPC, MPI, metrics sinks or envs in here. Gradient synchronisation across learner ranks
is injected as ``grad_sync`` and called between ``backward()`` and ``step()``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from agent.update_types import Batch, UpdateResult
from common.networks import build_actor, build_critic, freeze
from common.spec import Learner as LearnerConfig
from common.spec import Model as ModelConfig
from meta.pcgrad import pcgrad

GradSync = Callable[[nn.Module], None]


def per_task_mean(values: torch.Tensor, task: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the rows of each task (0 for a task with no rows);
    ``counts`` are the rows per task (:func:`task_counts`)."""
    sums = torch.zeros(len(counts), device=values.device).index_add_(0, task, values)
    return sums / counts.clamp_min(1)


def task_counts(task: torch.Tensor, num_tasks: int) -> torch.Tensor:
    """Rows per task as floats (``index_add_`` rather than ``bincount``: no device sync)."""
    ones = torch.ones_like(task, dtype=torch.float32)
    return torch.zeros(num_tasks, device=task.device).index_add_(0, task, ones)


def grouped_by_task(batch: Batch, target: torch.Tensor | None
                    ) -> tuple[Batch, torch.Tensor | None]:
    """``batch`` (and its TD ``target``) with the rows of each task together, in task order
    (the batch sampler builds them so already; the order within a task is kept)."""
    order = torch.argsort(batch.task, stable=True)
    return batch.rows(order), None if target is None else target[order]


def task_gradients(losses: Sequence[torch.Tensor], params: Sequence[torch.Tensor]
                   ) -> torch.Tensor:
    """The gradient of each loss over ``params``, flattened: one row per loss."""
    return torch.stack([
        torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params,
                                                              materialize_grads=True)])
        for loss in losses])


def combine(per_task: torch.Tensor, weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Weighted sum over tasks present in the batch, weights renormalized over them."""
    w = weights * present
    return (per_task * w).sum() / w.sum().clamp_min(1e-12)


def clipped_target(reward: torch.Tensor, next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """``r + γ Q'`` clipped to the return range ``[-1/(1-γ), 0]`` of -1/0 rewards."""
    return (reward + gamma * next_q).clamp(-1.0 / (1.0 - gamma), 0.0)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module``'s trainable parameters stop taking gradients inside the block (and take
    them again after it, whatever happens inside)."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for param in trainable:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in trainable:
            param.requires_grad_(True)


class ActorCriticLearner:
    """Actor, critics, their targets and optimizers; :meth:`update` does one step."""

    num_critics: ClassVar[int] = 2
    """Critics (and target critics); the TD target takes the smallest of their values."""
    stochastic_actor: ClassVar[bool] = False
    """Whether the actor is tanh-Gaussian (SAC) rather than deterministic (then it has a
    target network)."""
    targets_ahead: ClassVar[bool] = True
    """Whether TD targets may be computed on another thread while an update runs: they read
    only the target networks (which move under ``targets_lock``)."""

    def __init__(
        self,
        input_dim: int,
        action_dim: int,
        num_tasks: int,
        config: LearnerConfig,
        device: torch.device,
        grad_sync: GradSync | None = None,
        *,
        model: ModelConfig | None = None,
        project_gradients: bool = False,
        optimizer: str = "adam",
        lr_scale: float = 1.0,
        action_dims: Sequence[int] | None = None,
    ) -> None:
        self.config, self.device, self.num_tasks = config, device, num_tasks
        self.model = model or ModelConfig()
        self.grad_sync = grad_sync or (lambda module: None)
        self.project_gradients = project_gradients
        """PCGrad: combine per-task gradients with conflicting components projected out."""
        dims = (input_dim, action_dim, config.hidden_sizes, num_tasks)
        self.action_dims = list(action_dims or [action_dim] * num_tasks)
        """Each task's own action size (``action_dim`` is the largest; the rest is padding)."""
        self._action_sizes = torch.tensor(self.action_dims, dtype=torch.float32, device=device)
        self.actor = build_actor(self.model, *dims, stochastic=self.stochastic_actor,
                                 action_dims=self.action_dims).to(device)
        self.critics = nn.ModuleList(
            build_critic(self.model, *dims) for _ in range(self.num_critics)
        ).to(device)
        self.actor_target = (None if self.stochastic_actor
                             else copy.deepcopy(self.actor).requires_grad_(False))
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        freeze(self.actor, self.model.freeze)
        freeze(self.critics, self.model.freeze)
        # fused Adam: one kernel over all parameters (measured 1.05x the update on one CPU
        # thread at 3x128, batch 1024: bench/learner_throughput.py)
        opt = {"adam": functools.partial(torch.optim.Adam, fused=True),
               "sgd": torch.optim.SGD}[optimizer]
        self.actor_lr, self.critic_lr = config.actor_lr * lr_scale, config.critic_lr * lr_scale
        self.actor_opt = opt(self.actor.parameters(), lr=self.actor_lr)
        self.critic_opt = opt(self.critics.parameters(), lr=self.critic_lr)
        self.updates = 0
        """Critic updates done so far: the policy version observers see."""
        self.targets_lock: contextlib.AbstractContextManager = contextlib.nullcontext()
        """Held while the target networks are read for TD targets or moved by a Polyak step;
        a real lock once another thread computes targets (:mod:`agent.learn.prefetch`)."""

    # ------------------------------------------------------------------ hooks
    @property
    def actor_update_every(self) -> int:
        """Critic updates per actor update (TD3's policy delay)."""
        return 1

    def _target_action(self, next_obs: torch.Tensor) -> torch.Tensor:
        """The next action of the TD target (a deterministic actor's target network)."""
        return self.actor_target(next_obs)

    def _actor_losses(self, batch: Batch, counts: torch.Tensor
                      ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Per-task actor losses, -Q1(s, π(s)) plus the action penalty, and what
        :meth:`_after_actor_step` needs of this step (nothing here)."""
        action = self.actor(batch.obs)
        per_row = -self._smallest_q(batch.obs, action, self.critics[:1]) \
            + self._action_penalty(action, batch.task)
        return per_task_mean(per_row, batch.task, counts), {}

    def _after_actor_step(self, batch: Batch, step: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Work that follows an actor step, given what :meth:`_actor_losses` kept; returns
        per-task metrics of the algorithm's own."""
        return {}

    def _algorithm_per_task(self) -> dict[str, torch.Tensor]:
        """Per-task values the algorithm reports after every update."""
        return {}

    # ----------------------------------------------------------------- update
    def update(
        self, batch: Batch, task_weights: torch.Tensor, update_targets: bool = True,
        update_actor: bool | None = None, target: torch.Tensor | None = None,
    ) -> UpdateResult:
        """One step on ``batch``; per-task losses combined with ``task_weights``.

        ``target``: the batch's TD targets when computed ahead (:meth:`td_target`, on another
        thread); computed here otherwise.

        Meta-update inner steps pass ``update_targets=False`` (targets stay shared) and
        decide ``update_actor`` themselves (default: every :attr:`actor_update_every`-th
        update).
        """
        weights = task_weights.to(self.device)
        counts = task_counts(batch.task, self.num_tasks)
        present = (counts > 0).float()
        if self.project_gradients:
            batch, target = grouped_by_task(batch, target)
        critic_per_task, own, rows = self._losses(
            lambda r: self._critic_losses(batch.rows(r), counts,
                                          None if target is None else target[r]),
            counts, grouped=self.project_gradients)
        q, target = rows["q"], rows["target"]
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss = self._backward(critic_per_task, own, weights, present, self.critics)
        self.grad_sync(self.critics)
        self.critic_opt.step()
        self.updates += 1
        result = UpdateResult(
            critic_loss=critic_loss.detach(),
            critic_loss_per_task=critic_per_task.detach(),
            q_mean=q.mean(),
            q_mean_per_task=per_task_mean(q, batch.task, counts),
            target_mean=target.mean(),
            tasks_present=present,
        )
        if update_actor is None:
            update_actor = self.updates % self.actor_update_every == 0
        if update_actor:
            actor_per_task, own, step = self._losses(
                lambda r: self._actor_losses(batch.rows(r), counts), counts,
                grouped=self.project_gradients)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss = self._backward(actor_per_task, own, weights, present, self.actor)
            self.grad_sync(self.actor)
            self.actor_opt.step()
            result.actor_loss = actor_loss.detach()
            result.actor_loss_per_task = actor_per_task.detach()
            result.algorithm_per_task.update(self._after_actor_step(batch, step))
        result.algorithm_per_task.update(self._algorithm_per_task())
        if update_targets and self.updates % self.config.target_update_every == 0:
            self.soft_update()
        return result

    def gradients(self, batch: Batch, task_weights: torch.Tensor) -> list[torch.Tensor]:
        """Gradients of the weighted critic and actor losses at the current weights, in the
        order of :meth:`parameters`; nothing is stepped (FOMAML's query gradients)."""
        weights = task_weights.to(self.device)
        counts = task_counts(batch.task, self.num_tasks)
        present = (counts > 0).float()
        critic_loss = combine(self._critic_losses(batch, counts)[0], weights, present)
        actor_loss = combine(self._actor_losses(batch, counts)[0], weights, present)
        actor, critics = self.trainable_parameters()
        return [
            *torch.autograd.grad(actor_loss, actor, materialize_grads=True),
            *torch.autograd.grad(critic_loss, critics, materialize_grads=True),
        ]

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Actor and critic parameters that train (``model.freeze`` leaves the rest)."""
        return ([p for p in self.actor.parameters() if p.requires_grad],
                [p for p in self.critics.parameters() if p.requires_grad])

    def parameters(self) -> list[nn.Parameter]:
        """Trainable actor then critic parameters (the weights a meta-update moves)."""
        actor, critics = self.trainable_parameters()
        return [*actor, *critics]

    def own_critic_losses(self, batch: Batch
                          ) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Each present task's critic loss, from its own rows alone (so that the tasks'
        backward passes cost one of the batch together), and each task's mean |TD error|
        over the critics; nothing is stepped."""
        counts = task_counts(batch.task, self.num_tasks)
        batch, target = grouped_by_task(batch, self.td_target(batch))
        _, own, rows = self._losses(
            lambda r: self._critic_losses(batch.rows(r), counts, target[r], td_abs=True),
            counts, grouped=True)
        return own, per_task_mean(rows["td_abs"], batch.task, counts)

    def _critic_losses(
        self, batch: Batch, counts: torch.Tensor, target: torch.Tensor | None = None,
        td_abs: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-task TD losses of the critics; per row, the first critic's Q (detached), the
        target, and with ``td_abs`` the mean |TD error| over the critics (the signals')."""
        if target is None:
            target = self.td_target(batch)
        qs = [q(batch.obs, batch.action) for q in self.critics]
        td_error = sum(F.mse_loss(q, target, reduction="none") for q in qs)
        rows = {"q": qs[0].detach(), "target": target}
        if td_abs:
            rows["td_abs"] = sum((q.detach() - target).abs() for q in qs) / len(qs)
        return per_task_mean(td_error, batch.task, counts), rows

    def _losses(
        self, losses: Callable[[slice], tuple[torch.Tensor, dict[str, Any]]],
        counts: torch.Tensor, grouped: bool,
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor], dict[str, Any]]:
        """``losses(rows)`` (per-task losses and per-row outputs of the batch's ``rows``)
        over the whole batch: the per-task losses, each present task's own loss, and the
        per-row outputs in batch order.

        Not ``grouped``: one call on every row, and no own losses. ``grouped`` (the batch
        grouped by task, :func:`grouped_by_task`): one call per task on its rows alone; each
        task's loss then has a graph of its own rows, so the K per-task backward passes
        (PCGrad's, the signals') cost one backward of the batch together instead of one
        each.
        """
        if not grouped:
            per_task, rows = losses(slice(None))
            return per_task, {}, rows
        ends = counts.cumsum(0).long().tolist()
        own, parts = {}, []
        for task, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
            if end > start:
                per_task, rows = losses(slice(start, end))
                own[task] = per_task[task]
                parts.append(rows)
        per_task = torch.zeros(self.num_tasks, device=counts.device)
        per_task[list(own)] = torch.stack(list(own.values())).detach()
        return per_task, own, {key: torch.cat([rows[key] for rows in parts])
                               for key in parts[0]}

    @torch.no_grad()
    def td_target(self, batch: Batch) -> torch.Tensor:
        """TD targets of ``batch`` from the target networks: the smallest target critic at
        :meth:`_target_action`, clipped to the return range. Safe to call from another
        thread."""
        with self.targets_lock:
            next_action = self._target_action(batch.next_obs)
            next_q = functools.reduce(torch.minimum, [
                q(batch.next_obs, next_action) for q in self.critics_target])
        return clipped_target(batch.reward, next_q, self.config.gamma)

    def _action_penalty(self, action: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """``action_l2`` times the mean squared action over each row's task's own dimensions
        (padded ones are zero and not counted)."""
        return self.config.action_l2 * action.pow(2).sum(-1) / self._action_sizes[task]

    def _smallest_q(self, obs: torch.Tensor, action: torch.Tensor,
                    critics: nn.ModuleList) -> torch.Tensor:
        """The smallest of ``critics``' Q(s, a), differentiable in ``action`` only (the actor
        step needs no critic weight gradients)."""
        with frozen(critics):
            return functools.reduce(torch.minimum, [critic(obs, action) for critic in critics])

    def _backward(
        self, per_task: torch.Tensor, own: dict[int, torch.Tensor], weights: torch.Tensor,
        present: torch.Tensor, module: nn.Module,
    ) -> torch.Tensor:
        """Gradients of the weighted per-task losses into ``module``, or with PCGrad of each
        task's ``own`` loss, projected and combined; returns the combined loss."""
        loss = combine(per_task, weights, present)
        if not self.project_gradients:
            loss.backward()
            return loss
        params = [p for p in module.parameters() if p.requires_grad]
        tasks = list(own)
        grads = task_gradients(list(own.values()), params)
        task_weights = weights[tasks] / weights[tasks].sum().clamp_min(1e-12)
        flat = pcgrad(grads, task_weights)
        for param, grad in zip(params, flat.split([p.numel() for p in params]), strict=True):
            param.grad = grad.view_as(param)
        return loss.detach()

    @torch.no_grad()
    def soft_update(self) -> None:
        """One Polyak step of the target networks towards the current ones."""
        tau = self.config.tau
        nets = self.networks()
        with self.targets_lock:
            for name, target in nets.items():
                if name.endswith("_target"):
                    source = nets[name.removesuffix("_target")]
                    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()),
                                         tau)

    def networks(self) -> dict[str, nn.Module]:
        """Every network by its checkpoint name; ``<name>_target`` follows ``<name>``."""
        nets = {"actor": self.actor, "critics": self.critics,
                "critics_target": self.critics_target}
        if self.actor_target is not None:
            nets["actor_target"] = self.actor_target
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer by its checkpoint name."""
        return {"actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def actor_state_cpu(self) -> dict[str, torch.Tensor]:
        """A detached CPU copy of the actor weights (the learner's modules are untouched)."""
        return {k: v.detach().to("cpu", copy=True) for k, v in self.actor.state_dict().items()}

    def state_dict(self) -> dict:
        parts = {**self.networks(), **self.optimizers()}
        return {name: part.state_dict() for name, part in parts.items()} | {
            "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for name, part in {**self.networks(), **self.optimizers()}.items():
            part.load_state_dict(state[name])
        self.updates = int(state["updates"])
