"""SAC: tanh-Gaussian log-probabilities, the soft TD target, per-task temperatures, and the
stochastic policy observers explore with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from agent.checkpoint import load_checkpoint, save_checkpoint
from agent.learn.meta_update import MetaUpdater
from agent.learn.prefetch import BatchPrefetcher
from agent.learn.sac import SACLearner
from agent.update_types import UpdateResult
from common.envs import TaskShape
from common.networks import GaussianActor, tanh_gaussian_log_prob
from common.normalizer import ObservationEncoder
from common.policy import Policy
from common.spec import Learner, Meta, Model
from tests.test_td3 import make_batch, params

WEIGHTS = torch.tensor([0.5, 0.5])


def make_sac(**overrides) -> SACLearner:
    torch.manual_seed(0)
    config = Learner(algo="sac", hidden_sizes=[16, 16], **overrides)
    return SACLearner(6, 4, 2, config, torch.device("cpu"))


def test_log_prob_matches_torch_tanh_transformed_normal() -> None:
    torch.manual_seed(0)
    mean, log_std = torch.randn(64, 3), torch.randn(64, 3).clamp(-2, 1)
    pre_tanh = mean + log_std.exp() * torch.randn(64, 3)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()),
        [torch.distributions.TanhTransform()],
    ).log_prob(torch.tanh(pre_tanh).clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    ours = tanh_gaussian_log_prob(pre_tanh, mean, log_std)
    finite = pre_tanh.abs().amax(-1) < 3  # where tanh is not saturated in float32
    assert torch.allclose(ours[finite], reference[finite], atol=1e-3)


def test_actor_acts_with_tanh_of_its_mean_and_samples_inside_the_action_range() -> None:
    torch.manual_seed(0)
    actor = GaussianActor(6, 4, [16])
    x = torch.randn(128, 6)
    mean, log_std = actor.distribution(x)
    assert torch.equal(actor(x), torch.tanh(mean))
    assert log_std.min() >= -5.0 and log_std.max() <= 2.0
    action, log_prob = actor.sample(x)
    assert action.shape == (128, 4) and log_prob.shape == (128,)
    assert action.abs().max() < 1.0 and not torch.allclose(action, actor(x))


class _ConstantCritic(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return torch.full((obs.shape[0],), self.value)


def test_soft_target_against_a_hand_computation() -> None:
    """r + γ (min(Q1', Q2') − α_task log π(a'|s')), not clipped to the return range."""
    learner = make_sac(gamma=0.9, initial_temperature=0.5)
    learner.temperature.task_log_alpha.data = torch.log(torch.tensor([0.5, 2.0]))
    learner.critics_target = nn.ModuleList([_ConstantCritic(-3.0), _ConstantCritic(-4.0)])
    log_prob = torch.tensor([1.0, -1.0, 2.0])
    learner.actor.sample = lambda obs: (torch.zeros(3, 4), log_prob)
    batch = make_batch(n=3)
    batch.task = torch.tensor([0, 1, 1])
    batch.reward = torch.tensor([-1.0, 0.0, -1.0])
    target = learner.td_target(batch)
    # row 0: -1 + 0.9 (-4 - 0.5·1); row 1: 0 + 0.9 (-4 + 2·1); row 2: -1 + 0.9 (-4 - 2·2)
    assert target.tolist() == pytest.approx([-1 - 0.9 * 4.5, -0.9 * 2.0, -1 - 0.9 * 8.0])
    learner.actor.sample = lambda obs: (torch.zeros(3, 4), torch.full((3,), -100.0))
    assert learner.td_target(batch)[1].item() == pytest.approx(0.9 * (-4.0 + 200.0))


@pytest.mark.parametrize(("target_entropy", "moves"), [(-100.0, "down"), (100.0, "up")])
def test_temperature_moves_each_task_towards_its_entropy_target(
    target_entropy: float, moves: str
) -> None:
    """Entropy above the target: α falls (less paid for entropy); below: α rises."""
    learner = make_sac(target_entropy_per_action_dim=target_entropy / 4)
    start = learner.temperature().detach().clone()
    for seed in range(5):
        result = learner.update(make_batch(seed=seed), WEIGHTS)
    end = learner.temperature().detach()
    assert torch.all(end < start) if moves == "down" else torch.all(end > start)
    assert torch.equal(result.algorithm_per_task["sac/temperature"], end)
    assert result.algorithm_per_task["sac/entropy"].shape == (2,)


def test_a_tasks_temperature_moves_only_with_its_own_rows() -> None:
    """Also after updates that moved it (an optimizer with momentum would keep moving it)."""
    learner = make_sac()
    batch = make_batch()
    rows = batch.task == 0
    only_task0 = type(batch)(*(t[rows] for t in vars(batch).values()))
    learner.update(batch, WEIGHTS)
    for _ in range(2):
        before = learner.temperature().detach().clone()
        learner.update(only_task0, WEIGHTS)
        after = learner.temperature().detach()
        assert after[0] != before[0] and after[1] == before[1]


class _PeakedCritic(nn.Module):
    """Q(s, a) = -10 |a - 0.5|²: pulls every action dimension to 0.5 (entropy down), while
    the entropy bonus pushes it up; the temperature decides where they meet."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # the critic step needs a parameter

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return -10 * (action - 0.5).pow(2).sum(-1) + 0 * self.unused


@pytest.mark.parametrize("per_dim", [-0.5, -2.0])
def test_the_temperature_brings_the_policys_entropy_to_its_target(per_dim: float) -> None:
    learner = make_sac(action_l2=0.0, actor_lr=1e-2, target_entropy_per_action_dim=per_dim)
    learner.critics = nn.ModuleList([_PeakedCritic(), _PeakedCritic()])
    learner.critics_target = nn.ModuleList([_PeakedCritic(), _PeakedCritic()])
    learner.critic_opt = torch.optim.Adam(learner.critics.parameters())
    batch = make_batch(n=256)
    entropy = [learner.update(batch, WEIGHTS).algorithm_per_task["sac/entropy"].mean().item()
               for _ in range(600)]
    target = learner.target_entropy[0].item()
    start, end = abs(entropy[0] - target), abs(sum(entropy[-50:]) / 50 - target)
    assert end < 0.1 * abs(target) and end < start / 4, (entropy[0], entropy[-1], target)


def test_actor_steps_every_update_and_only_critics_have_targets() -> None:
    learner = make_sac(policy_delay=2)
    assert learner.actor_target is None and set(learner.networks()) == {
        "actor", "critics", "critics_target", "temperature"}
    assert all(learner.update(make_batch(seed=s), WEIGHTS).actor_loss is not None
               for s in range(3))


def test_grad_sync_sees_the_temperatures_too() -> None:
    seen: list[type] = []
    learner = make_sac()
    learner.grad_sync = lambda module: seen.append(type(module))
    learner.update(make_batch(), WEIGHTS)
    assert [t.__name__ for t in seen] == ["ModuleList", "GaussianActor", "Temperature"]


def test_checkpoint_round_trip_continues_identically(tmp_path: Path) -> None:
    learner = make_sac()
    for seed in range(3):
        learner.update(make_batch(seed=seed), WEIGHTS)
    save_checkpoint(tmp_path / "learner.pt", learner.state_dict())
    clone = make_sac()
    clone.load_state_dict(load_checkpoint(tmp_path / "learner.pt"))
    for copy in (learner, clone):
        torch.manual_seed(5)
        copy.update(make_batch(seed=7), WEIGHTS)
    assert torch.equal(params(clone.critics), params(learner.critics))
    assert torch.equal(params(clone.actor), params(learner.actor))
    assert torch.equal(clone.temperature(), learner.temperature())


def test_prefetch_prepares_the_batch_but_leaves_sacs_targets_to_the_learner() -> None:
    learner = make_sac()
    batch = make_batch()
    prefetcher = BatchPrefetcher(lambda shares: batch, learner)
    try:
        assert prefetcher.next(np.ones(2)) == (batch, None)
    finally:
        prefetcher.close()


def test_policy_samples_reproducibly_from_its_rng_and_acts_on_the_mean() -> None:
    torch.manual_seed(0)
    shape = TaskShape(obs_dim=4, goal_dim=2, action_dim=3, horizon=5)
    encoder = ObservationEncoder([shape], eps=0.01, clip=5.0)
    policy = Policy(encoder, GaussianActor(encoder.input_dim, 3, [16]))
    assert policy.stochastic
    obs, goal = np.ones((1000, 4), np.float32), np.zeros((1000, 2), np.float32)
    draw = [policy.sample(0, obs, goal, np.random.default_rng(s)) for s in (1, 1, 2)]
    assert np.array_equal(draw[0], draw[1]) and not np.array_equal(draw[0], draw[2])
    with torch.no_grad():
        mean, log_std = policy.actor.distribution(torch.from_numpy(encoder.encode(0, obs, goal)))
    pre_tanh = np.arctanh(np.clip(draw[0], -1 + 1e-6, 1 - 1e-6))
    assert np.allclose(pre_tanh.mean(0), mean[0].numpy(), atol=0.15)
    assert np.allclose(pre_tanh.std(0), log_std[0].exp().numpy(), rtol=0.1)
    assert np.allclose(policy.act(0, obs, goal), np.tanh(mean.numpy()), atol=1e-6)
    assert np.abs(draw[0]).max() <= 1.0 and draw[0].dtype == np.float32


@pytest.mark.parametrize("arch", ["onehot", "multihead", "ptsl", "lora"])
@pytest.mark.parametrize("how", ["joint", "pcgrad", "reptile", "fomaml"])
def test_sac_trains_with_every_architecture_weighting_and_meta_update(
    arch: str, how: str
) -> None:
    """Each combination steps the actor, the critics and every task's temperature, and
    repeated steps on one batch fit its TD targets."""
    torch.manual_seed(0)
    config = Learner(algo="sac", hidden_sizes=[16, 16])
    learner = SACLearner(6, 4, 2, config, torch.device("cpu"), model=Model(arch=arch),
                         project_gradients=how == "pcgrad")
    actor, critics = params(learner.actor), params(learner.critics)
    temperature = learner.temperature().detach().clone()
    batch = make_batch(64)
    rows = {t: type(batch)(*(v[batch.task == t] for v in vars(batch).values())) for t in (0, 1)}
    updater = MetaUpdater(learner, Meta(update=how, inner_steps=2)) if how in (
        "reptile", "fomaml") else None

    def step() -> UpdateResult:
        if updater is not None:
            return updater.step([0, 1], rows.__getitem__, WEIGHTS)
        return learner.update(batch, WEIGHTS)

    first = step()
    assert not torch.equal(params(learner.actor), actor)
    assert not torch.equal(params(learner.critics), critics)
    assert torch.all(learner.temperature() != temperature)
    assert torch.isfinite(first.critic_loss)
    assert first.algorithm_per_task["sac/entropy"].shape == (2,)
    for _ in range(50):
        last = step()
    assert last.critic_loss < 0.75 * first.critic_loss, (first.critic_loss, last.critic_loss)
