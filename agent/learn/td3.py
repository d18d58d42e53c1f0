"""DDPG and TD3 (``learner.algo: ddpg | td3``) on the shared actor-critic update
(:mod:`agent.learn.actor_critic`).

DDPG: one critic, the target actor's action in the TD target, an actor step every update.
TD3 adds what Fujimoto et al. (2018) add: twin critics (the smaller target value), target
policy smoothing (clipped Gaussian noise on the target action) and a delayed actor
(``learner.policy_delay``).
"""

from __future__ import annotations

import torch

from agent.learn.actor_critic import ActorCriticLearner


class DDPGLearner(ActorCriticLearner):
    """One critic; the target actor's own action in the TD target."""

    num_critics = 1


class TD3Learner(ActorCriticLearner):
    """Twin critics, target policy smoothing, an actor step every ``policy_delay`` updates."""

    num_critics = 2

    @property
    def actor_update_every(self) -> int:
        return self.config.policy_delay

    def _target_action(self, next_obs: torch.Tensor) -> torch.Tensor:
        """The target actor's action plus clipped Gaussian noise (padded dimensions stay 0)."""
        cfg = self.config
        action = self.actor_target(next_obs)
        noise = (torch.randn_like(action) * cfg.target_noise).clamp(
            -cfg.target_noise_clip, cfg.target_noise_clip)
        return self.actor_target.masked(next_obs, (action + noise).clamp(-1.0, 1.0))
