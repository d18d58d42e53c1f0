"""Actor and critic MLPs over the encoded (obs, goal, task) input, with optional per-task parts.

Architectures (``common.spec.Model.arch``):

- ``onehot``: a shared ReLU MLP; the task is only the one-hot at the end of the input.
- ``multihead``: shared hidden layers, one output layer per task.
- ``ptsl``: Projected Task-Specific Layers (Roberts & Di, ICRA 2024, after PAL by Stickland &
  Murray 2019): every hidden layer is ``W h + b + U M_t V h`` with ``V`` (rank × in) and ``U``
  (out × rank) shared and ``M_t`` (rank × rank) per task, initialised to zero; output layers
  are per task, as in ``multihead``.
- ``lora``: every shared linear layer (output included) gets a per-task adapter
  ``B_t A_t h`` (scale α/r = 1); ``A_t`` is random, ``B_t`` starts at zero.

Parameter names: shared linear layers are ``net.{2i}.weight/bias`` (the layout of the plain MLP,
so ``onehot`` state dicts are unchanged); ptsl's shared projections are ``proj.{i}.down`` (V) and
``proj.{i}.up`` (U). Every task-specific parameter's name contains ``task_`` and its first axis
is the task index: ``task_heads.weight`` (T, out, in), ``task_heads.bias`` (T, out),
``proj.{i}.task_mix`` (T, rank, rank), ``task_adapters.{i}.a`` (T, r, in) and
``task_adapters.{i}.b`` (T, out, r); ``i`` counts linear layers from the input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.spec import Model

Arch = Literal["onehot", "multihead", "ptsl", "lora"]
FreezeMode = Literal["none", "hidden", "shared"]


def _hidden_layers(in_dim: int, hidden: Sequence[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return layers


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """ReLU MLP with a linear output layer."""
    width = hidden[-1] if hidden else in_dim
    return nn.Sequential(*_hidden_layers(in_dim, hidden), nn.Linear(width, out_dim))


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    """``nn.Linear``'s default init: U(-1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


def _pick(per_task: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rows of ``per_task`` (N, T, d) at each row's task (``mask``: (N, T) one-hot) -> (N, d)."""
    return (per_task * mask.unsqueeze(-1)).sum(1)


class TaskLinear(nn.Module):
    """One linear layer per task; row n uses the layer of its task."""

    def __init__(self, num_tasks: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = _uniform(num_tasks, out_dim, in_dim, fan_in=in_dim)
        self.bias = _uniform(num_tasks, out_dim, fan_in=in_dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        num_tasks, out_dim, in_dim = self.weight.shape
        every = F.linear(h, self.weight.reshape(num_tasks * out_dim, in_dim))
        return _pick(every.view(-1, num_tasks, out_dim), mask) + mask @ self.bias


class ProjectedCorrection(nn.Module):
    """PTSL's task-specific term ``U M_t V h`` (V, U shared; M_t per task, zero at init)."""

    def __init__(self, num_tasks: int, in_dim: int, out_dim: int, rank: int) -> None:
        super().__init__()
        self.down = _uniform(rank, in_dim, fan_in=in_dim)
        self.up = _uniform(out_dim, rank, fan_in=rank)
        self.task_mix = nn.Parameter(torch.zeros(num_tasks, rank, rank))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        num_tasks, rank, _ = self.task_mix.shape
        z = F.linear(h, self.down)
        every = F.linear(z, self.task_mix.reshape(num_tasks * rank, rank))
        return F.linear(_pick(every.view(-1, num_tasks, rank), mask), self.up)


class LowRankAdapter(nn.Module):
    """LoRA term ``B_t A_t h`` per task (A random, B zero at init, scale α/r = 1)."""

    def __init__(self, num_tasks: int, in_dim: int, out_dim: int, rank: int) -> None:
        super().__init__()
        self.a = _uniform(num_tasks, rank, in_dim, fan_in=in_dim)
        self.b = nn.Parameter(torch.zeros(num_tasks, out_dim, rank))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        num_tasks, rank, in_dim = self.a.shape
        z = F.linear(h, self.a.reshape(num_tasks * rank, in_dim)).view(-1, num_tasks, rank)
        return torch.einsum("ntr,tor->no", z * mask.unsqueeze(-1), self.b)


class TaskMLP(nn.Module):
    """ReLU MLP over ``h`` whose layers add per-task terms for the task of each row.

    The task of a row is the argmax of the last ``num_tasks`` columns of the encoded input.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        arch: Arch = "onehot",
        num_tasks: int = 1,
        rank: int = 8,
    ) -> None:
        super().__init__()
        if arch in ("multihead", "ptsl") and not hidden:
            raise ValueError(f"arch {arch!r} needs at least one hidden layer")
        self.arch, self.num_tasks = arch, num_tasks
        self.proj: nn.ModuleList | None = None
        self.task_adapters: nn.ModuleList | None = None
        self.task_heads: TaskLinear | None = None
        if arch in ("onehot", "lora"):
            self.net = mlp(in_dim, hidden, out_dim)
        else:
            self.net = nn.Sequential(*_hidden_layers(in_dim, hidden))
            self.task_heads = TaskLinear(num_tasks, hidden[-1], out_dim)
        shapes = [(layer.in_features, layer.out_features) for layer in self._linears()]
        if arch == "ptsl":
            self.proj = nn.ModuleList(ProjectedCorrection(num_tasks, i, o, rank) for i, o in shapes)
        if arch == "lora":
            self.task_adapters = nn.ModuleList(
                LowRankAdapter(num_tasks, i, o, rank) for i, o in shapes
            )

    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def task_mask(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T) one-hot of each row's task, read from the encoded input ``x``."""
        task = x[:, -self.num_tasks :].argmax(-1)
        return F.one_hot(task, self.num_tasks).to(x.dtype)

    def trunk(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network on ``h`` (``x`` plus any extra columns) for the tasks of ``x``'s rows."""
        if self.arch == "onehot":
            return self.net(h)
        mask = self.task_mask(x)
        corrections = self.proj if self.proj is not None else self.task_adapters
        if corrections is None:
            h = self.net(h)
        else:
            layers = list(self.net)
            for i, correction in enumerate(corrections):
                h = layers[2 * i](h) + correction(h, mask)
                if 2 * i + 1 < len(layers):
                    h = layers[2 * i + 1](h)
        return h if self.task_heads is None else self.task_heads(h, mask)

    def trainable_in(self, mode: FreezeMode) -> list[str]:
        """Names of the parameters that train under freeze ``mode``."""
        names = [name for name, _ in self.named_parameters()]
        if mode == "none":
            return names
        if mode == "shared":
            if self.arch == "onehot":
                raise ValueError(
                    "freeze='shared' trains only task-specific parameters and arch 'onehot' "
                    "has none; use freeze 'none' or 'hidden', or another arch"
                )
            return [n for n in names if "task_" in n]
        if mode == "hidden":
            output = f"net.{len(self.net) - 1}." if self.task_heads is None else "task_heads."
            return [n for n in names if "task_" in n or n.startswith(output)]
        raise ValueError(f"unknown freeze mode {mode!r}; expected none, hidden or shared")


class _ActorBase(TaskMLP):
    """An actor over tasks whose action sizes may differ: actions have the largest size, and
    a task with fewer dimensions gets zeros in the others (its padded outputs are masked
    out, so no loss reaches them and its env never sees them)."""

    OUTPUTS_PER_ACTION: ClassVar[int]
    """Network outputs per action dimension."""

    def __init__(
        self,
        input_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        arch: Arch = "onehot",
        num_tasks: int = 1,
        rank: int = 8,
        action_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__(input_dim, hidden, self.OUTPUTS_PER_ACTION * action_dim, arch,
                         num_tasks, rank)
        mask = None
        if action_dims is not None and any(d != action_dim for d in action_dims):
            mask = torch.tensor([[1.0] * d + [0.0] * (action_dim - d) for d in action_dims])
        self.register_buffer("action_mask", mask, persistent=False)
        """(tasks, action_dim): 1 at each task's own action dimensions; None if all use all."""

    def padding_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """(N, action_dim) rows of :attr:`action_mask` for the tasks of ``x``'s rows; None
        when every task uses every action dimension."""
        if self.action_mask is None:
            return None
        return self.action_mask[x[:, -self.num_tasks :].argmax(-1)]

    def masked(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``action`` with each row's padded dimensions set to zero."""
        mask = self.padding_mask(x)
        return action if mask is None else action * mask


class Actor(_ActorBase):
    """Deterministic policy with actions in [-1, 1]."""

    OUTPUTS_PER_ACTION = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.masked(x, torch.tanh(self.trunk(x, x)))


LOG_STD_RANGE = (-5.0, 2.0)
"""Range of the Gaussian actor's log standard deviation (pre-tanh), as in CleanRL's SAC."""


class GaussianActor(_ActorBase):
    """Tanh-Gaussian policy (SAC): the net gives a mean and a log std per action; actions are
    ``tanh`` of a Gaussian sample. ``forward`` is the deterministic action ``tanh(mean)``."""

    OUTPUTS_PER_ACTION = 2  # a mean and a log std

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log std (squashed into :data:`LOG_STD_RANGE`) of the pre-tanh Gaussian."""
        mean, raw = self.trunk(x, x).chunk(2, dim=-1)
        low, high = LOG_STD_RANGE
        return mean, low + 0.5 * (high - low) * (torch.tanh(raw) + 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.masked(x, torch.tanh(self.distribution(x)[0]))

    def sample(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized action and its log-probability over the row's task's own action
        dimensions (one value per row)."""
        mean, log_std = self.distribution(x)
        pre_tanh = mean + log_std.exp() * torch.randn_like(mean)
        mask = self.padding_mask(x)
        log_prob = tanh_gaussian_log_prob(pre_tanh, mean, log_std, mask)
        return self.masked(x, torch.tanh(pre_tanh)), log_prob


def tanh_gaussian_log_prob(
    pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """log π(tanh(u)) of a diagonal Gaussian sample ``u``, summed over the action dimensions
    (those where ``mask`` is 1): the Gaussian's log density minus
    log |d tanh(u)/du| = 2 (log 2 - u - softplus(-2u))."""
    gaussian = -0.5 * ((pre_tanh - mean) / log_std.exp()).pow(2) - log_std \
        - 0.5 * math.log(2 * math.pi)
    squash = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
    per_dim = gaussian - squash
    return (per_dim if mask is None else per_dim * mask).sum(-1)


class Critic(TaskMLP):
    """Q(s, g, task, a) -> scalar per row."""

    def __init__(
        self,
        input_dim: int,
        action_dim: int,
        hidden: Sequence[int],
        arch: Arch = "onehot",
        num_tasks: int = 1,
        rank: int = 8,
    ) -> None:
        super().__init__(input_dim + action_dim, hidden, 1, arch, num_tasks, rank)

    def forward(self, x: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.trunk(torch.cat([x, action], dim=-1), x).squeeze(-1)


def build_actor(
    model: Model, input_dim: int, action_dim: int, hidden: Sequence[int], num_tasks: int,
    stochastic: bool = False, action_dims: Sequence[int] | None = None,
) -> Actor | GaussianActor:
    """The actor of ``model.arch`` over the encoder's input (nothing frozen; see :func:`freeze`):
    deterministic, or tanh-Gaussian when ``stochastic`` (SAC). ``action_dims``: each task's
    own action size when they differ (``action_dim`` is the largest)."""
    kind = GaussianActor if stochastic else Actor
    return kind(input_dim, action_dim, hidden, model.arch, num_tasks, model.rank, action_dims)


def build_critic(
    model: Model, input_dim: int, action_dim: int, hidden: Sequence[int], num_tasks: int
) -> Critic:
    """One critic of ``model.arch`` (nothing frozen; see :func:`freeze`)."""
    return Critic(input_dim, action_dim, hidden, model.arch, num_tasks, model.rank)


def freeze(module: nn.Module, what: FreezeMode) -> None:
    """Set ``requires_grad`` on every :class:`TaskMLP` inside ``module`` (itself included).

    ``none``: all train; ``hidden``: shared hidden layers (ptsl's U, V included) are frozen,
    output layers and task-specific parameters train; ``shared``: only task-specific
    parameters train (ValueError for ``onehot``).
    """
    nets = [m for m in module.modules() if isinstance(m, TaskMLP)]
    if not nets:
        raise ValueError(f"{type(module).__name__} holds no actor or critic to freeze")
    for net in nets:
        trainable = set(net.trainable_in(what))
        for name, param in net.named_parameters():
            param.requires_grad_(name in trainable)


def task_specific_parameter_names(module: nn.Module) -> list[str]:
    """Names (relative to ``module``) of its task-specific parameters: those with ``task_``."""
    return [name for name, _ in module.named_parameters() if "task_" in name]
