"""TD3 update: target, per-task combination, delayed actor, targets, gradient-sync seam."""

from __future__ import annotations

import pytest
import torch

from agent.checkpoint import load_checkpoint, save_checkpoint
from agent.learn.actor_critic import clipped_target, combine, frozen, per_task_mean, task_counts
from agent.learn.td3 import DDPGLearner, TD3Learner
from agent.update_types import Batch, UpdateResult
from common.spec import Learner


def test_target_is_the_discounted_next_value_clipped_to_the_return_range() -> None:
    gamma = 0.9
    target = clipped_target(torch.tensor([-1.0, 0.0, -1.0]), torch.tensor([-5.0, -2.0, -100.0]),
                            gamma)
    assert target.tolist() == pytest.approx([-5.5, -1.8, -1 / (1 - gamma)])
    assert clipped_target(torch.tensor([0.0]), torch.tensor([3.0]), gamma).item() == 0.0


def test_td3_targets_take_the_smaller_twin_and_ddpg_its_one_critic() -> None:
    batch = make_batch()
    for kind, critics in ((TD3Learner, 2), (DDPGLearner, 1)):
        torch.manual_seed(0)
        learner = kind(6, 4, 2, Learner(hidden_sizes=[16, 16], target_noise=0.0),
                       torch.device("cpu"))
        assert len(learner.critics) == len(learner.critics_target) == critics
        next_action = learner.actor_target(batch.next_obs)
        values = torch.stack([q(batch.next_obs, next_action) for q in learner.critics_target])
        expected = clipped_target(batch.reward, values.min(0).values, learner.config.gamma)
        assert torch.allclose(learner.td_target(batch), expected)


def test_frozen_parameters_train_again_after_an_error_inside() -> None:
    learner = make_learner()
    with pytest.raises(RuntimeError, match="inside"), frozen(learner.critics):
        assert not any(p.requires_grad for p in learner.critics.parameters())
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in learner.critics.parameters())


def test_per_task_mean_and_weighted_combination() -> None:
    values = torch.tensor([1.0, 3.0, 10.0, 0.0])
    task = torch.tensor([0, 0, 1, 1])
    per_task = per_task_mean(values, task, task_counts(task, 3))
    assert per_task.tolist() == [2.0, 5.0, 0.0]
    present = torch.tensor([1.0, 1.0, 0.0])
    assert combine(per_task, torch.tensor([0.5, 0.25, 0.25]), present).item() == pytest.approx(3.0)
    # a task absent from the batch gets no weight; the others are renormalized
    assert combine(per_task, torch.tensor([1 / 3] * 3), present).item() == pytest.approx(3.5)


def make_batch(n: int = 32, dim: int = 6, tasks: int = 2, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(n, dim, generator=g),
        action=torch.rand(n, 4, generator=g) * 2 - 1,
        reward=-(torch.rand(n, generator=g) > 0.5).float(),
        next_obs=torch.randn(n, dim, generator=g),
        task=torch.arange(n) % tasks,
    )


def make_learner(**overrides) -> TD3Learner:
    torch.manual_seed(0)
    config = Learner(hidden_sizes=[16, 16], **overrides)
    return TD3Learner(6, 4, 2, config, torch.device("cpu"))


def params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def test_actor_updates_only_every_policy_delay_and_targets_every_k() -> None:
    learner = make_learner(policy_delay=2, target_update_every=2)
    actor0, target0 = params(learner.actor), params(learner.actor_target)
    critic0 = params(learner.critics)
    out = learner.update(make_batch(), torch.tensor([0.5, 0.5]))
    assert out.actor_loss is None and "losses/actor" not in out.scalars()
    assert torch.equal(params(learner.actor), actor0)
    assert torch.equal(params(learner.actor_target), target0)
    assert not torch.equal(params(learner.critics), critic0)
    out = learner.update(make_batch(seed=1), torch.tensor([0.5, 0.5]))
    assert out.actor_loss is not None and "losses/actor" in out.per_task()
    assert not torch.equal(params(learner.actor), actor0)
    assert not torch.equal(params(learner.actor_target), target0)


def test_soft_update_moves_targets_by_tau_every_k_updates() -> None:
    learner = make_learner(policy_delay=1, tau=0.25, target_update_every=3)
    before = params(learner.actor_target), params(learner.critics_target)
    for seed in range(2):
        learner.update(make_batch(seed=seed), torch.tensor([0.5, 0.5]))
    assert torch.equal(params(learner.actor_target), before[0])
    assert torch.equal(params(learner.critics_target), before[1])
    learner.update(make_batch(seed=2), torch.tensor([0.5, 0.5]))
    for net, target, old in ((learner.actor, learner.actor_target, before[0]),
                             (learner.critics, learner.critics_target, before[1])):
        expected = old + 0.25 * (params(net) - old)
        assert torch.allclose(params(target), expected, atol=1e-6)


def test_ddpg_has_one_critic_and_updates_actor_every_step() -> None:
    torch.manual_seed(0)
    learner = DDPGLearner(6, 4, 2, Learner(hidden_sizes=[16, 16]), torch.device("cpu"))
    assert len(learner.critics) == 1
    assert learner.update(make_batch(), torch.tensor([0.5, 0.5])).actor_loss is not None


def test_grad_sync_sees_every_network_before_the_step() -> None:
    seen = []

    def sync(module: torch.nn.Module) -> None:
        seen.append(all(p.grad is not None for p in module.parameters()))

    learner = make_learner(policy_delay=1)
    learner.grad_sync = sync
    learner.update(make_batch(), torch.tensor([0.5, 0.5]))
    assert seen == [True, True]


def test_task_weights_decide_which_task_the_critic_fits() -> None:
    """With all weight on task 0, task 1's rows produce no critic gradient."""
    learner = make_learner(target_noise=0.0)
    batch = make_batch()
    learner.update(batch, torch.tensor([1.0, 0.0]))
    grads_w0 = [p.grad.clone() for p in learner.critics.parameters()]
    learner2 = make_learner(target_noise=0.0)
    mask = batch.task == 0
    task0 = Batch(*(t[mask] for t in vars(batch).values()))
    learner2.update(task0, torch.tensor([1.0, 0.0]))
    for a, b in zip(grads_w0, (p.grad for p in learner2.critics.parameters()), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_state_dict_round_trip_restores_networks_and_counter() -> None:
    learner = make_learner()
    for seed in range(3):
        learner.update(make_batch(seed=seed), torch.tensor([0.5, 0.5]))
    clone = make_learner()
    clone.load_state_dict(learner.state_dict())
    assert clone.updates == 3
    assert torch.equal(params(clone.actor), params(learner.actor))
    assert torch.equal(params(clone.critics_target), params(learner.critics_target))


def test_updates_merge_per_task_values_only_over_updates_where_the_task_was_present() -> None:
    def result(critic: float, per_task: list[float], present: list[float],
               actor: float | None = None) -> UpdateResult:
        zero = torch.tensor(0.0)
        return UpdateResult(torch.tensor(critic), torch.tensor(per_task), zero,
                            torch.tensor(per_task), zero, torch.tensor(present),
                            None if actor is None else torch.tensor(actor),
                            None if actor is None else torch.tensor(per_task))

    merged = UpdateResult.mean([result(1.0, [2.0, 0.0], [1.0, 0.0]),
                                result(3.0, [4.0, 6.0], [1.0, 1.0], actor=5.0)])
    assert merged.critic_loss.item() == 2.0
    assert merged.critic_loss_per_task.tolist() == [3.0, 6.0]  # task 1 only in the second
    assert merged.tasks_present.tolist() == [1.0, 1.0]
    assert merged.actor_loss.item() == 5.0  # only the second moved the actor
    assert merged.actor_loss_per_task.tolist() == [4.0, 6.0]


def test_optimizer_state_survives_a_checkpoint_so_training_continues_identically(
    tmp_path,
) -> None:
    """Adam's moments and step counts go through save and load (weights_only): the next
    update of the restored learner equals the original's, which a fresh Adam's would not."""
    learner = make_learner()
    for seed in range(4):
        learner.update(make_batch(seed=seed), torch.tensor([0.5, 0.5]))
    save_checkpoint(tmp_path / "learner.pt", learner.state_dict())
    restored, fresh_adam = make_learner(), make_learner()
    restored.load_state_dict(load_checkpoint(tmp_path / "learner.pt"))
    fresh_adam.load_state_dict({**learner.state_dict(),
                                "actor_opt": fresh_adam.actor_opt.state_dict(),
                                "critic_opt": fresh_adam.critic_opt.state_dict()})
    for copy in (learner, restored, fresh_adam):
        torch.manual_seed(7)  # the same target-policy noise for each
        copy.update(make_batch(seed=9), torch.tensor([0.5, 0.5]))
    assert torch.equal(params(restored.critics), params(learner.critics))
    assert not torch.allclose(params(fresh_adam.critics), params(learner.critics))


def test_actor_copy_for_observers_is_detached_and_on_cpu() -> None:
    learner = make_learner()
    copy = learner.actor_state_cpu()
    first = next(iter(copy))
    copy[first].add_(1.0)
    assert not torch.equal(copy[first], learner.actor.state_dict()[first])
    assert all(t.device.type == "cpu" and not t.requires_grad for t in copy.values())


def _conflicting_batch() -> Batch:
    """Two tasks on the same states and actions, rewards 0 and -1."""
    half = make_batch(n=32, tasks=1)
    return Batch(obs=half.obs.repeat(2, 1), action=half.action.repeat(2, 1),
                 reward=torch.cat([torch.zeros(32), -torch.ones(32)]),
                 next_obs=half.next_obs.repeat(2, 1),
                 task=torch.cat([torch.zeros(32, dtype=torch.long),
                                 torch.ones(32, dtype=torch.long)]))


@pytest.mark.parametrize("rows", ["grouped", "interleaved"])
def test_pcgrad_inside_the_update_steps_along_the_projected_gradient(rows: str) -> None:
    """Each task's gradient comes from a forward pass of its own rows (any row order); the
    step and the reported per-task values are those of the whole batch's graph."""
    from meta.pcgrad import pcgrad

    torch.manual_seed(0)
    config = Learner(hidden_sizes=[16, 16], critic_lr=0.1, target_noise=0.0)
    learner = TD3Learner(6, 4, 2, config, torch.device("cpu"), project_gradients=True,
                         optimizer="sgd")
    with torch.no_grad():  # Q starts at -0.5, the targets at 0: task 0's TD step goes up
        for critic, target in zip(learner.critics, learner.critics_target, strict=True):
            critic.net[-1].bias.fill_(-0.5)
            target.net[-1].bias.fill_(0.0)
    batch, weights = _conflicting_batch(), torch.tensor([0.5, 0.5])
    if rows == "interleaved":
        batch = batch.rows(torch.randperm(len(batch.task)))
    critics = list(learner.critics.parameters())
    counts = task_counts(batch.task, 2)
    per_task, _ = learner._critic_losses(batch, counts)
    grads = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        per_task[t], critics, retain_graph=True)]) for t in range(2)])
    assert grads[0] @ grads[1] < 0  # the case PCGrad exists for
    expected = pcgrad(grads, weights)
    plain = weights @ grads
    assert not torch.allclose(expected, plain, atol=1e-6)
    before = params(learner.critics)
    result = learner.update(batch, weights, update_actor=False)
    step = before - params(learner.critics)
    assert torch.allclose(step, 0.1 * expected, atol=1e-6)
    assert torch.allclose(result.critic_loss_per_task, per_task.detach(), atol=1e-6)


def test_a_task_missing_from_the_batch_gets_no_weight_in_the_update() -> None:
    learner = make_learner()
    batch = make_batch(n=32, tasks=2)
    batch.task.zero_()  # every row is task 0
    result = learner.update(batch, torch.tensor([0.2, 0.8]))
    assert result.tasks_present.tolist() == [1.0, 0.0]
    assert result.critic_loss_per_task[1] == 0.0
    assert torch.allclose(result.critic_loss, result.critic_loss_per_task[0])


def test_a_transferred_run_steps_with_its_learning_rates_times_the_multiplier() -> None:
    from agent.learn.build import build_learner
    from common.policy import build_encoder
    from common.spec import load_spec

    def first_step(*overrides: str) -> tuple[float, float]:
        spec = load_spec("specs/fetch_reach.yaml", ["learner.hidden_sizes=[16, 16]", *overrides])
        torch.manual_seed(0)
        learner = build_learner(spec, build_encoder(spec))
        before = params(learner.critics)
        dim = learner.actor.net[0].in_features
        learner.update(make_batch(n=32, dim=dim, tasks=1), torch.ones(1))
        return (learner.critic_opt.param_groups[0]["lr"],
                float((params(learner.critics) - before).abs().max()))

    lr, step = first_step()
    scaled_lr, scaled_step = first_step("transfer.from_checkpoint=source.pt",
                                        "transfer.lr_multiplier=0.1")
    assert scaled_lr == pytest.approx(0.1 * lr)
    assert scaled_step == pytest.approx(0.1 * step, rel=1e-3)  # Adam's first step is ±lr
    assert first_step("transfer.lr_multiplier=0.1")[0] == lr  # only a transferred run
