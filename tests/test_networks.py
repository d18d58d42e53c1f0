"""Task-aware actor/critic architectures, freezing and weight transfer by task name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agent.learn.transfer import transfer_state
from common.networks import (
    Actor,
    Critic,
    build_actor,
    build_critic,
    freeze,
    task_specific_parameter_names,
)
from common.spec import Model

OBS, GOAL, ACTION, HIDDEN, RANK = 10, 3, 4, [32, 24], 4
ARCHS = ["onehot", "multihead", "ptsl", "lora"]
TASK_ARCHS = ["multihead", "ptsl", "lora"]


def encoded(task: torch.Tensor, num_tasks: int, seed: int = 0) -> torch.Tensor:
    """Encoder layout: ``[obs | goal | task one-hot]`` for the given row tasks."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(len(task), OBS + GOAL, generator=g) * 2
    return torch.cat([features, nn.functional.one_hot(task, num_tasks).float()], dim=1)


def actions(n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, ACTION, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def nets(arch: str, num_tasks: int, seed: int = 0) -> tuple[Actor, Critic]:
    torch.manual_seed(seed)
    model = Model(arch=arch, rank=RANK)
    dim = OBS + GOAL + num_tasks
    return (
        build_actor(model, dim, ACTION, HIDDEN, num_tasks),
        build_critic(model, dim, ACTION, HIDDEN, num_tasks),
    )


def outputs(actor: Actor, critic: Critic, x: torch.Tensor) -> torch.Tensor:
    """Actor and critic outputs side by side, one row per input row."""
    with torch.no_grad():
        return torch.cat([actor(x), critic(x, actions(len(x))).unsqueeze(-1)], dim=1)


MIXED = torch.tensor([0, 2, 1, 1, 0, 2, 2, 0])


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_action_range_on_a_mixed_batch(arch: str) -> None:
    actor, critic = nets(arch, 3)
    x = encoded(MIXED, 3) * 50  # large inputs saturate tanh
    x[:, -3:] = nn.functional.one_hot(MIXED, 3).float()
    assert actor(x).shape == (len(MIXED), ACTION)
    assert critic(x, actions(len(MIXED))).shape == (len(MIXED),)
    assert actor(x).abs().max() <= 1.0


@pytest.mark.parametrize("arch", TASK_ARCHS)
def test_task_parameters_of_one_task_change_only_its_rows(arch: str) -> None:
    actor, critic = nets(arch, 3)
    x = encoded(MIXED, 3)
    before = outputs(actor, critic, x)
    with torch.no_grad():
        for net in (actor, critic):
            for name, param in net.named_parameters():
                if "task_" in name:
                    param[1] += torch.randn_like(param[1])
    after = outputs(actor, critic, x)
    mine = MIXED == 1
    assert torch.equal(after[~mine], before[~mine])
    assert (after[mine] != before[mine]).all()


@pytest.mark.parametrize(("arch", "plain"), [("lora", "onehot"), ("ptsl", "multihead")])
def test_corrections_start_at_zero(arch: str, plain: str) -> None:
    actor, critic = nets(arch, 3, seed=0)
    plain_actor, plain_critic = nets(plain, 3, seed=1)
    for net, plain_net in ((actor, plain_actor), (critic, plain_critic)):
        shared = {k: v for k, v in net.state_dict().items() if k in plain_net.state_dict()}
        plain_net.load_state_dict(shared)
    x = encoded(MIXED, 3)
    assert torch.allclose(outputs(actor, critic, x), outputs(plain_actor, plain_critic, x))


def test_onehot_keeps_the_plain_mlp_layout() -> None:
    actor, critic = nets("onehot", 3)
    assert list(actor.state_dict()) == [
        f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
    ]
    assert critic.state_dict()["net.0.weight"].shape == (HIDDEN[0], OBS + GOAL + 3 + ACTION)


def train_step(actor: Actor, critic: Critic) -> None:
    """Backward and a plain SGD step on every parameter that received a gradient."""
    x = encoded(MIXED, 3)
    (actor(x).pow(2).sum() + critic(x, actions(len(x))).pow(2).sum()).backward()
    with torch.no_grad():
        for param in (*actor.parameters(), *critic.parameters()):
            if param.grad is not None:
                param -= 0.1 * param.grad


@pytest.mark.parametrize("arch", TASK_ARCHS)
def test_freeze_shared_trains_only_task_parameters(arch: str) -> None:
    actor, critic = nets(arch, 3)
    both = nn.ModuleList([actor, critic])
    freeze(both, "shared")
    trainable = {n for n, p in both.named_parameters() if p.requires_grad}
    assert trainable == set(task_specific_parameter_names(both))
    assert trainable and all("task_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in both.named_parameters()}
    train_step(actor, critic)
    changed = {n for n, p in both.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable


def test_freeze_shared_refuses_onehot() -> None:
    actor, _ = nets("onehot", 3)
    with pytest.raises(ValueError, match="onehot"):
        freeze(actor, "shared")


@pytest.mark.parametrize(
    ("arch", "output"),
    [("onehot", "net.4."), ("multihead", "task_heads."), ("ptsl", "task_heads."),
     ("lora", "net.4.")],
)
def test_freeze_hidden_keeps_output_and_task_layers_trainable(arch: str, output: str) -> None:
    actor, critic = nets(arch, 3)
    for net in (actor, critic):
        freeze(net, "hidden")
        for name, param in net.named_parameters():
            assert param.requires_grad == (name.startswith(output) or "task_" in name), name
        freeze(net, "none")
        assert all(p.requires_grad for p in net.parameters())


def test_freeze_needs_a_task_network() -> None:
    with pytest.raises(ValueError, match="Linear"):
        freeze(nn.Linear(2, 2), "hidden")


@pytest.mark.parametrize("arch", ARCHS)
def test_transfer_maps_tasks_by_name(arch: str) -> None:
    src_tasks, tgt_tasks = ["Slide", "Push"], ["Push", "PickAndPlace", "Slide"]
    src_actor, src_critic = nets(arch, 2, seed=0)
    with torch.no_grad():  # make every task's parameters distinct and nonzero
        for net in (src_actor, src_critic):
            for name, param in net.named_parameters():
                if "task_" in name:
                    param.add_(torch.randn_like(param))
    tgt_actor, tgt_critic = nets(arch, 3, seed=1)
    for src, tgt in ((src_actor, tgt_actor), (src_critic, tgt_critic)):
        fresh = {k: v.clone() for k, v in tgt.state_dict().items()}
        mapped = transfer_state(src.state_dict(), src_tasks, fresh, tgt_tasks, OBS, GOAL)
        assert all(torch.equal(fresh[k], v) for k, v in tgt.state_dict().items())  # a copy
        tgt.load_state_dict(mapped)
    src_w, tgt_w = src_actor.state_dict(), tgt_actor.state_dict()
    assert torch.equal(tgt_w["net.2.weight"], src_w["net.2.weight"])
    base = OBS + GOAL
    assert torch.equal(tgt_w["net.0.weight"][:, :base], src_w["net.0.weight"][:, :base])
    assert torch.equal(tgt_w["net.0.weight"][:, base + 1], src_w["net.0.weight"][:, base])
    if arch in ("multihead", "ptsl"):
        assert torch.equal(tgt_w["task_heads.weight"][0], src_w["task_heads.weight"][1])
        assert torch.equal(tgt_w["task_heads.weight"][1], src_w["task_heads.weight"][0])
    # Same obs/goal: target Push, PickAndPlace (new: the source's first task, Slide) and Slide
    # rows act exactly like source Push, Slide and Slide rows.
    tgt_rows, src_rows = torch.tensor([0, 1, 2, 0, 2, 1]), torch.tensor([1, 0, 0, 1, 0, 0])
    got = outputs(tgt_actor, tgt_critic, encoded(tgt_rows, 3))
    want = outputs(src_actor, src_critic, encoded(src_rows, 2))
    assert torch.allclose(got, want, atol=1e-6)


def test_transfer_rejects_mismatched_networks() -> None:
    src = nets("multihead", 1)[0].state_dict()
    with pytest.raises(ValueError, match="'multihead' weights into a 'lora'"):
        transfer_state(src, ["Push"], nets("lora", 2)[0].state_dict(), ["Push", "PickAndPlace"],
                       OBS, GOAL)
    torch.manual_seed(0)
    wider = Actor(OBS + GOAL + 2, ACTION + 1, HIDDEN, "multihead", 2).state_dict()
    with pytest.raises(ValueError, match="action size"):
        transfer_state(src, ["Push"], wider, ["Push", "PickAndPlace"], OBS, GOAL)
    with pytest.raises(ValueError, match="goal_dim"):
        transfer_state(src, ["Push"], nets("multihead", 2)[0].state_dict(),
                       ["Push", "PickAndPlace"], OBS + 1, GOAL)
