"""Map network weights of a source run onto a target run's network by task name.

Relies on the parameter naming of :mod:`common.networks`: task-specific parameters contain
``task_`` and are stacked over tasks on their first axis; the parameters that read the encoded
input ``[obs | goal | task one-hot | action (critics only)]`` are those of the first linear
layer. Names may carry a prefix (a critics ``ModuleList`` state dict has ``0.net.0.weight``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from agent.checkpoint import UnreadableCheckpoint, load_run_checkpoint
from common.spec import Spec, SpecError

if TYPE_CHECKING:
    from agent.learn.actor_critic import ActorCriticLearner
    from common.normalizer import ObservationEncoder

_INPUT = re.compile(r"(?:^|\.)(?:net\.0\.weight|proj\.0\.down|task_adapters\.0\.a)$")
"""Parameters whose last axis is the network input."""
_ARCH_MARKERS = (
    ("lora", r"task_adapters\."),
    ("ptsl", r"proj\.\d+\."),
    ("multihead", r"task_heads\."),
)


def arch_of(state: dict[str, torch.Tensor]) -> str:
    """The architecture a state dict was saved from, told from its parameter names."""
    for arch, marker in _ARCH_MARKERS:
        if any(re.search(rf"(?:^|\.){marker}", name) for name in state):
            return arch
    return "onehot"


def _map_columns(
    weight: torch.Tensor, base: int, num_tasks: int, index: torch.Tensor
) -> torch.Tensor:
    """Input columns ``[obs+goal | one-hot | rest]`` with the one-hot columns taken at ``index``."""
    one_hot = weight[..., base : base + num_tasks].index_select(-1, index)
    return torch.cat([weight[..., :base], one_hot, weight[..., base + num_tasks :]], dim=-1)


def transfer_state(
    source: dict[str, torch.Tensor],
    source_tasks: list[str],
    target: dict[str, torch.Tensor],
    target_tasks: list[str],
    obs_dim: int,
    goal_dim: int,
) -> dict[str, torch.Tensor]:
    """A copy of ``target`` (a fresh state dict of the same arch for ``target_tasks``) holding
    ``source``'s weights.

    Shared parameters are copied; the first layer's one-hot column of each target task, and
    every task-specific parameter (heads, ptsl's M_t, lora's A_t/B_t) of it, come from the same
    task in the source, or from the source's first task for a task the source lacks (so a new
    task starts as a clone of that task's network; for lora its adapter is copied too rather
    than left at zero, since the backbone alone never acted for any task).
    Raises ValueError when the arch, layer sizes, rank or input/action sizes differ.
    """
    if arch_of(source) != arch_of(target):
        raise ValueError(
            f"cannot transfer {arch_of(source)!r} weights into a {arch_of(target)!r} network "
            "(model.arch must match the source run's)"
        )
    if source.keys() != target.keys():
        missing = sorted(set(source.keys()) ^ set(target.keys()))
        raise ValueError(f"source and target networks differ in layers: {missing[:6]}")
    index = [source_tasks.index(t) if t in source_tasks else 0 for t in target_tasks]
    base = obs_dim + goal_dim
    out: dict[str, torch.Tensor] = {}
    for name, tgt in target.items():
        src = source[name]
        if "task_" in name:
            if src.shape[0] != len(source_tasks) or tgt.shape[0] != len(target_tasks):
                raise ValueError(
                    f"{name}: {src.shape[0]} source / {tgt.shape[0]} target tasks stored, "
                    f"but {len(source_tasks)} / {len(target_tasks)} task names given"
                )
            src = src[torch.tensor(index, device=src.device)]
        if _INPUT.search(name):
            extra_src = src.shape[-1] - base - len(source_tasks)
            extra_tgt = tgt.shape[-1] - base - len(target_tasks)
            if extra_src != extra_tgt or extra_src < 0:
                raise ValueError(
                    f"{name}: input widths {src.shape[-1]} (source, {len(source_tasks)} tasks) "
                    f"and {tgt.shape[-1]} (target, {len(target_tasks)} tasks) don't fit "
                    f"obs_dim {obs_dim} + goal_dim {goal_dim} + tasks with equal action sizes"
                )
            columns = torch.tensor(index, device=src.device)
            src = _map_columns(src, base, len(source_tasks), columns)
        if src.shape != tgt.shape:
            raise ValueError(
                f"{name}: source {tuple(src.shape)} vs target {tuple(tgt.shape)} after mapping "
                "tasks; hidden sizes, rank or action size differ"
            )
        out[name] = src.detach().to(device=tgt.device, dtype=tgt.dtype, copy=True)
    return out


def load_source(path_text: str) -> dict:
    """The source checkpoint of ``transfer.from_checkpoint``; SpecError naming it if unusable."""
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"transfer.from_checkpoint: {path}: checkpoint not found")
    try:
        return load_run_checkpoint(path)
    except UnreadableCheckpoint as exc:
        raise SpecError(f"transfer.from_checkpoint: {exc}") from None


def transfer_into(state: dict, source_name: str, learner: ActorCriticLearner,
                  encoder: ObservationEncoder, tasks: list[str]) -> None:
    """Start ``learner`` from a source checkpoint's networks, tasks matched by name.

    Every network (actor, critics, their targets, SAC's temperatures) is mapped with
    :func:`transfer_state`; normalizer statistics come from the same task, and a new task with
    the same observation and goal sizes takes the source's first task's (it starts as a clone
    of that task, as its network does; its own data then joins those sums). Optimizers start
    fresh. Raises SpecError naming ``source_name`` when the networks cannot be mapped.
    """
    source_spec, nets = state["spec"], state["learner"]
    source_tasks = list(source_spec["tasks"])
    if source_spec["learner"]["algo"] != learner.config.algo:
        raise SpecError(f"transfer.from_checkpoint: {source_name}: learner.algo is "
                        f"{source_spec['learner']['algo']!r} there, {learner.config.algo!r} here")
    first = next(v for k, v in nets["actor"].items() if _INPUT.search(k))
    source_obs_dim = first.shape[-1] - encoder.goal_dim - len(source_tasks)
    if source_obs_dim != encoder.obs_dim:
        raise SpecError(f"transfer.from_checkpoint: {source_name}: observations have "
                        f"{source_obs_dim} features there, {encoder.obs_dim} here")
    modules = learner.networks()
    try:
        mapped = {name: transfer_state(nets[name], source_tasks, module.state_dict(), tasks,
                                       encoder.obs_dim, encoder.goal_dim)
                  for name, module in modules.items()}
    except ValueError as exc:
        raise SpecError(f"transfer.from_checkpoint: {source_name}: {exc}") from None
    for name, module in modules.items():
        module.load_state_dict(mapped[name])
    source_obs = state["encoder"]["obs"]
    source_goal = state["encoder"]["goal"]
    for index, task in enumerate(tasks):
        j = source_tasks.index(task) if task in source_tasks else 0
        shape = encoder.shapes[index]
        if (source_obs[j]["sum"].shape[0], source_goal[j]["sum"].shape[0]) != (
                shape.obs_dim, shape.goal_dim):
            continue  # a new task with other observations or goals keeps fresh statistics
        encoder.obs_norm[index].load_state_dict(source_obs[j])
        encoder.goal_norm[index].load_state_dict(source_goal[j])


def apply_transfer(spec: Spec, learner: ActorCriticLearner, encoder: ObservationEncoder) -> None:
    """Start a new run from ``spec.transfer.from_checkpoint`` (SpecError if it cannot)."""
    source = spec.transfer.from_checkpoint
    assert source is not None
    transfer_into(load_source(source), source, learner, encoder, list(spec.tasks))
