"""What crosses the agent ⇄ observer transport: orders out, whole episodes back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class PolicySnapshot:
    """A CPU copy of the actor and the encoder statistics at learner update ``version``."""

    version: int
    actor: dict[str, torch.Tensor]
    encoder: dict


@dataclass
class Order:
    """A task list: how many episodes of which tasks, with or without exploration."""

    order_id: int
    tasks: list[tuple[str, int]]
    explore: bool
    seed: int
    policy: PolicySnapshot | None = None


@dataclass
class EpisodeBatch:
    """``n`` whole episodes of one task, arrays with a leading episode axis.

    ``obs`` and ``achieved_goal`` have ``horizon + 1`` steps, ``desired_goal`` and
    ``action`` have ``horizon``; ``success`` (bool) is ``is_success`` at the last step.
    """

    task: str
    obs: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray
    action: np.ndarray
    success: np.ndarray
    policy_version: int

    @property
    def num_episodes(self) -> int:
        return self.action.shape[0]

    @property
    def env_steps(self) -> int:
        return self.action.shape[0] * self.action.shape[1]


@dataclass
class OrderResult:
    """The reply to one :class:`Order`: one message carrying every episode it asked for."""

    order_id: int
    observer: str
    batches: list[EpisodeBatch] = field(default_factory=list)
    collect_s: float = 0.0
