"""The four multi-task designs users try, measured on real Fetch data (docs/multitask.md).

Collects exploration episodes of FetchReach and FetchPush with the untrained policy, fills
per-task replays (HER), then compares the critic gradients each design produces from the
same weights, after ``--warm-updates`` joint updates:

1. one env per MPI rank, gradients averaged  vs  one joint loss with ``mean`` weighting;
2. per-task buffers, one random task per update: cosine to the joint gradient;
   round-robin with TD3's policy delay: which tasks the actor ever trains on;
3. per-task network copies trained k steps and averaged (Reptile with ε=1) vs k joint steps;
4. one joint loss that averages rows instead of tasks, when batch shares are unequal.

    python bench/designs.py [--episodes 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import torch

from agent.learn.build import build_batcher, build_learner
from agent.learn.meta_update import reptile_step
from agent.learn.td3 import TD3Learner
from agent.update_types import Batch
from common.policy import build_encoder, build_policy
from common.spec import validate_spec
from observer.rollout import Rollout

TASKS = ["FetchReach-v4", "FetchPush-v4"]


def collect(spec, episodes: int, seed: int):
    """Per-task replays filled with exploration episodes of the untrained policy."""
    rng = np.random.default_rng(seed)
    policy = build_policy(spec)
    rollout = Rollout(TASKS, policy.encoder.shapes, policy, 2, 0.2, 0.3)
    encoder = build_encoder(spec)
    batcher = build_batcher(spec, encoder, 100_000, rng)
    for index, task in enumerate(TASKS):
        batch = rollout.collect(task, episodes, True, rng)
        batcher.replays[index].add(batch)
        goals = np.concatenate([batch.achieved_goal, batch.desired_goal], axis=1)
        encoder.update(index, batch.obs, goals)
    rollout.close()
    return encoder, batcher


def critic_grad(learner: TD3Learner, batch: Batch, weights: torch.Tensor) -> torch.Tensor:
    return torch.cat([g.flatten() for g in learner.gradients(batch, weights)
                      [-sum(1 for _ in learner.critics.parameters()):]])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-updates", type=int, default=1000,
                        help="joint updates before measuring (gradients at init all agree)")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    spec = validate_spec({"tasks": TASKS, "budget": {"env_steps": 1},
                          "learner": {"device": "cpu", "target_noise": 0.0}}, "bench")
    encoder, batcher = collect(spec, args.episodes, args.seed)
    learner = build_learner(spec, encoder)
    half = torch.tensor([0.5, 0.5])
    for _ in range(args.warm_updates):
        learner.update(batcher.sample(256, np.array([0.5, 0.5])), half)
    one_hot = np.eye(2)
    per_task = [batcher.sample(256, one_hot[t]) for t in range(2)]
    joint = Batch(*(torch.cat(cols) for cols in zip(*(vars(b).values() for b in per_task),
                                                    strict=True)))
    results: dict[str, object] = {}

    # 1. MPI ranks with one task each, Allreduce-averaged = joint mean loss
    averaged = sum(critic_grad(learner, b, half) for b in per_task) / 2
    joint_grad = critic_grad(learner, joint, half)
    results["ranks_vs_joint_max_abs_diff"] = float((averaged - joint_grad).abs().max())
    results["ranks_vs_joint_grad_norm"] = float(joint_grad.norm())

    # 2. one random task per update: each single-task gradient against the joint one
    results["single_task_cosine_to_joint"] = [
        round(cosine(critic_grad(learner, b, half), joint_grad), 3) for b in per_task]
    fresh = [batcher.sample(512, np.array([0.5, 0.5])) for _ in range(2)]
    results["two_joint_minibatches_cosine"] = round(
        cosine(critic_grad(learner, fresh[0], half), critic_grad(learner, fresh[1], half)), 3)
    delay = spec.learner.policy_delay
    results["round_robin_actor_tasks"] = sorted(
        {u % len(TASKS) for u in range(1, 1001) if u % delay == 0})

    # 3. per-task copies trained k steps then averaged vs k joint steps
    for k in (1, 4, 16):
        start = copy.deepcopy(learner)
        batches = [[batcher.sample(256, one_hot[t]) for _ in range(k)] for t in range(2)]
        copies = copy.deepcopy(start)
        copies.actor_opt = torch.optim.SGD(copies.actor.parameters(), lr=1e-3)
        copies.critic_opt = torch.optim.SGD(copies.critics.parameters(), lr=1e-3)

        def adapt(task: int, model=copies, batches=batches) -> None:
            for batch in batches[task]:
                model.update(batch, half, update_targets=False)

        reptile_step(copies.parameters(), [0, 1], adapt, 1.0)
        together = copy.deepcopy(start)
        together.actor_opt = torch.optim.SGD(together.actor.parameters(), lr=1e-3)
        together.critic_opt = torch.optim.SGD(together.critics.parameters(), lr=1e-3)
        for i in range(k):
            rows = [vars(batches[t][i]).values() for t in range(2)]
            together.update(Batch(*(torch.cat(c) for c in zip(*rows, strict=True))), half,
                            update_targets=False)
        moved = flat(together.critics) - flat(start.critics)
        gap = flat(copies.critics) - flat(together.critics)
        results[f"averaged_copies_k{k}_relative_gap"] = round(
            float(gap.norm() / moved.norm().clamp_min(1e-12)), 4)

    # 4. a row-mean over a 3:1 batch weights the tasks 3:1; per-task means weight them 1:1
    uneven = Batch(*(torch.cat(c) for c in zip(
        vars(batcher.sample(384, one_hot[0])).values(),
        vars(batcher.sample(128, one_hot[1])).values(), strict=True)))
    g_reach = critic_grad(learner, uneven, torch.tensor([1.0, 0.0]))
    g_push = critic_grad(learner, uneven, torch.tensor([0.0, 1.0]))
    row_mean = 0.75 * g_reach + 0.25 * g_push
    task_mean = critic_grad(learner, uneven, half)
    results["row_mean_vs_task_mean_cosine"] = round(cosine(row_mean, task_mean), 3)
    results["row_mean_push_share_of_gradient"] = round(
        float((0.25 * g_push).norm() / (0.75 * g_reach + 0.25 * g_push).norm()), 3)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
