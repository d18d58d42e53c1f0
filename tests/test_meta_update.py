"""First-order meta-updates: Reptile/FOMAML steps and their use on the TD3 learner."""

from __future__ import annotations

import torch

from agent.learn.meta_update import MetaUpdater, fomaml_gradient, reptile_step
from agent.learn.td3 import TD3Learner
from agent.update_types import Batch
from common.spec import Learner, Meta
from tests.test_td3 import make_batch, params


def task_rows(batch: Batch, task: int) -> Batch:
    keep = batch.task == task
    return Batch(*(t[keep] for t in vars(batch).values()))


def sgd_learner() -> TD3Learner:
    torch.manual_seed(0)
    config = Learner(hidden_sizes=[16, 16], target_noise=0.0, target_update_every=1000,
                     policy_delay=10)
    return TD3Learner(6, 4, 2, config, torch.device("cpu"), optimizer="sgd")


def test_reptile_with_one_sgd_step_and_eps_1_equals_one_averaged_gradient_step() -> None:
    batch = make_batch(64)
    joint, meta = sgd_learner(), sgd_learner()
    weights = torch.tensor([0.5, 0.5])
    joint.update(batch, weights)  # the mean of the two tasks' losses: averaged gradient
    config = Meta(update="reptile", inner_steps=1, outer_step=1.0, inner_optimizer="sgd")
    MetaUpdater(meta, config).step([0, 1], lambda task: task_rows(batch, task), weights)
    assert meta.updates == 2
    assert torch.allclose(params(meta.critics), params(joint.critics), atol=1e-6)
    assert torch.equal(params(meta.actor), params(joint.actor))  # TD3 delays the actor
    assert not torch.equal(params(meta.critics), params(sgd_learner().critics))


def quadratic(centres: torch.Tensor):
    """Task i's loss |θ - c_i|²; ``adapt`` takes k SGD steps of size lr on it in place."""
    theta = torch.zeros(2, requires_grad=True)

    def grad(task: int) -> torch.Tensor:
        return 2 * (theta.detach() - centres[task])

    def adapt(k: int, lr: float):
        def run(task: int) -> None:
            for _ in range(k):
                with torch.no_grad():
                    theta.sub_(lr * grad(task))
        return run

    return theta, grad, adapt


def test_reptile_interpolates_towards_the_mean_adapted_weights() -> None:
    centres = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    theta, _, adapt = quadratic(centres)
    reptile_step([theta], [0, 1], adapt(k=50, lr=0.1), epsilon=0.5)
    # k large: each task adapts to its centre; ε=0.5 moves half way to their mean
    assert torch.allclose(theta.detach(), 0.5 * centres.mean(0), atol=1e-5)
    reptile_step([theta], [0, 1], adapt(k=3, lr=0.1), epsilon=0.0)
    assert torch.allclose(theta.detach(), 0.5 * centres.mean(0), atol=1e-5)


def test_fomaml_gradient_is_the_mean_gradient_at_the_adapted_weights() -> None:
    centres = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    theta, grad, adapt = quadratic(centres)
    (mean,) = fomaml_gradient([theta], [0, 1], adapt(k=1, lr=0.1), lambda t: [grad(t)])
    # adapted θ_i = 0.2 c_i; gradients 2(θ_i - c_i) = -1.6 c_i
    assert torch.allclose(mean, -1.6 * centres.mean(0), atol=1e-6)
    assert torch.equal(theta.detach(), torch.zeros(2))  # back at the start


def test_meta_update_keeps_targets_during_inner_steps_and_updates_them_after() -> None:
    torch.manual_seed(0)
    config = Learner(hidden_sizes=[16, 16], target_update_every=4)
    learner = TD3Learner(6, 4, 2, config, torch.device("cpu"))
    batch = make_batch(64)
    updater = MetaUpdater(learner, Meta(update="fomaml", inner_steps=1))
    targets = params(learner.critics_target)
    out = updater.step([0, 1], lambda task: task_rows(batch, task), torch.tensor([0.5, 0.5]))
    assert torch.equal(params(learner.critics_target), targets)  # 2 updates < 4
    assert out.critic_loss_per_task.shape == (2,)
    assert out.tasks_present.tolist() == [1.0, 1.0]
    updater.step([0, 1], lambda task: task_rows(batch, task), torch.tensor([0.5, 0.5]))
    assert not torch.equal(params(learner.critics_target), targets)  # 4 updates: one step


def test_every_tasks_actor_steps_at_its_own_policy_delay() -> None:
    torch.manual_seed(0)
    learner = TD3Learner(6, 4, 2, Learner(hidden_sizes=[16, 16]), torch.device("cpu"))
    batch = make_batch(64)
    updater = MetaUpdater(learner, Meta(update="reptile", inner_steps=1))
    first = updater.step([0, 1], lambda task: task_rows(batch, task), torch.tensor([0.5, 0.5]))
    assert first.actor_loss_per_task is None  # each task's 1st inner update: no actor
    second = updater.step([0, 1], lambda task: task_rows(batch, task), torch.tensor([0.5, 0.5]))
    assert (second.actor_loss_per_task != 0).all()  # both tasks' 2nd: both actors


def test_reptile_mean_is_weighted_by_the_task_weights() -> None:
    centres = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    theta, _, adapt = quadratic(centres)
    reptile_step([theta], [0, 1], adapt(k=50, lr=0.1), epsilon=1.0, weights=[0.75, 0.25])
    assert torch.allclose(theta.detach(), 0.75 * centres[0] + 0.25 * centres[1], atol=1e-5)
