"""Per-task signals: |TD error|, the task's own critic gradient, its cosine with the joint one
and its smallest cosine with another task's."""

from __future__ import annotations

import pytest
import torch

from agent.learn.actor_critic import combine, task_counts
from agent.learn.task_signals import smallest_pair_cosine, task_signals
from agent.learn.td3 import TD3Learner
from common.spec import Learner
from tests.test_td3 import make_batch


def _learner(tasks: int = 3, seed: int = 0) -> TD3Learner:
    torch.manual_seed(seed)
    return TD3Learner(6, 4, tasks, Learner(hidden_sizes=[16, 16], target_noise=0.0),
                      torch.device("cpu"))


def _critic_gradient(learner: TD3Learner, loss: torch.Tensor) -> torch.Tensor:
    params = list(learner.critics.parameters())
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params,
                                                                 retain_graph=True)])


def test_signals_match_the_task_losses_and_gradients_computed_by_hand() -> None:
    learner, batch = _learner(), make_batch(n=64, tasks=3)
    weights = torch.tensor([0.5, 0.3, 0.2])
    signals, present = task_signals(learner, batch, weights)
    assert present.tolist() == [1.0, 1.0, 1.0]
    target = learner.td_target(batch)
    qs = [critic(batch.obs, batch.action) for critic in learner.critics]
    counts = task_counts(batch.task, 3)
    losses = []
    for task in range(3):
        rows = batch.task == task
        td_abs = torch.stack([(q[rows] - target[rows]).abs().mean() for q in qs]).mean()
        assert signals["signals/td_abs"][task].item() == pytest.approx(td_abs.item(), rel=1e-5)
        losses.append(sum(((q[rows] - target[rows]) ** 2).mean() for q in qs))
    grads = [_critic_gradient(learner, loss) for loss in losses]
    for task in range(3):
        assert signals["signals/grad_norm"][task].item() == pytest.approx(
            grads[task].norm().item(), rel=1e-4)
    # the joint gradient is the one the update follows: its weighted loss combination
    joint = _critic_gradient(learner, combine(torch.stack(losses), weights, counts > 0))
    for task in range(3):
        cosine = torch.nn.functional.cosine_similarity(grads[task], joint, dim=0)
        assert signals["signals/grad_cos"][task].item() == pytest.approx(cosine.item(), abs=1e-5)
        pair = min(torch.nn.functional.cosine_similarity(grads[task], grads[other], dim=0)
                   for other in range(3) if other != task)
        assert signals["signals/conflict_cos"][task].item() == pytest.approx(pair.item(),
                                                                            abs=1e-5)


def test_a_task_alone_in_the_batch_points_along_the_joint_gradient() -> None:
    learner, batch = _learner(tasks=2), make_batch(n=32, tasks=2)
    batch.task.zero_()  # every row is task 0; task 1 is missing
    signals, present = task_signals(learner, batch, torch.tensor([0.5, 0.5]))
    assert present.tolist() == [1.0, 0.0]
    assert signals["signals/grad_cos"][0].item() == pytest.approx(1.0, abs=1e-5)
    assert signals["signals/conflict_cos"][0].item() == 1.0  # no other task to conflict with
    assert signals["signals/grad_norm"][0].item() > 0
    assert signals["signals/grad_norm"][1].item() == 0.0


def test_the_smallest_pair_cosine_is_negative_for_a_conflicting_pair_and_skips_absent_tasks(
) -> None:
    grads = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, 2.0], [-5.0, 0.0]])
    cosines = smallest_pair_cosine(grads, present=torch.tensor([1.0, 1.0, 1.0, 0.0]))
    half = 2 ** -0.5
    # task 0 conflicts with task 1 (cosine -1/sqrt 2); task 3, absent, counts for no one
    assert cosines[:3].tolist() == pytest.approx([-half, -half, 0.0])


def test_signals_leave_the_weights_and_their_gradients_alone() -> None:
    learner, batch = _learner(), make_batch(n=32, tasks=3)
    before = [p.detach().clone() for p in learner.parameters()]
    task_signals(learner, batch, torch.full((3,), 1 / 3))
    assert all(torch.equal(a, p) for a, p in zip(before, learner.parameters(), strict=True))
    assert all(p.grad is None for p in learner.parameters())
