"""Learner updates/s: our multi-task TD3 update against a plain PyTorch TD3 update.

The plain update is written the obvious way (CleanRL style: two critic modules, one
optimizer over both, Python loops for the Polyak average). Both run on the same batch,
interleaved, in one process, one thread; the ratio is what to compare across machines.
Also prints the update's matmul GFLOP/s against this core's peak (one thread, a large
float32 matmul), and what all cores deliver together (one such process per core at
once): the ceiling for any way of spreading the learner over the box.

    python -m bench.learner_throughput [--spec specs/fetch_push.yaml] [--batch-size N]
                                       [--hidden 128 128 128] [--repeats 5] [--pcgrad]
                                       [--signals]

The network and batch default to the spec's (the shipped Push recipe: 3x128, batch 512).
``--pcgrad`` times our update with PCGrad's per-task gradients (``weighting.name: pcgrad``)
against the same plain update. ``--signals`` also times one recording of the per-task
signals (:func:`agent.learn.task_signals.task_signals`, every
``metrics.signals_every_updates`` updates in a run), in our updates' time.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import multiprocessing
import os
import platform
import time

import torch
import torch.nn.functional as F

from agent.learn.task_signals import task_signals
from agent.learn.td3 import TD3Learner
from agent.update_types import Batch
from common.networks import Actor, Critic
from common.spec import Learner, load_spec

INPUT_DIM, ACTION_DIM, NUM_TASKS = 25 + 3 + 3, 4, 3


class PlainTD3:
    """The obvious single-loss TD3 update, as a reference point."""

    def __init__(self, cfg: Learner) -> None:
        hidden = cfg.hidden_sizes
        self.cfg = cfg
        self.actor = Actor(INPUT_DIM, ACTION_DIM, hidden)
        self.qf1, self.qf2 = Critic(INPUT_DIM, ACTION_DIM, hidden), Critic(
            INPUT_DIM, ACTION_DIM, hidden
        )
        self.actor_t = copy.deepcopy(self.actor)
        self.qf1_t, self.qf2_t = copy.deepcopy(self.qf1), copy.deepcopy(self.qf2)
        self.q_opt = torch.optim.Adam(
            list(self.qf1.parameters()) + list(self.qf2.parameters()), lr=cfg.critic_lr
        )
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.step = 0

    def update(self, b: Batch) -> None:
        cfg = self.cfg
        with torch.no_grad():
            noise = (torch.randn_like(b.action) * cfg.target_noise).clamp(
                -cfg.target_noise_clip, cfg.target_noise_clip
            )
            next_a = (self.actor_t(b.next_obs) + noise).clamp(-1, 1)
            min_q = torch.min(self.qf1_t(b.next_obs, next_a), self.qf2_t(b.next_obs, next_a))
            y = (b.reward + cfg.gamma * min_q).clamp(-1 / (1 - cfg.gamma), 0)
        loss = F.mse_loss(self.qf1(b.obs, b.action), y) + F.mse_loss(self.qf2(b.obs, b.action), y)
        self.q_opt.zero_grad()
        loss.backward()
        self.q_opt.step()
        self.step += 1
        if self.step % cfg.policy_delay == 0:
            a = self.actor(b.obs)
            actor_loss = -self.qf1(b.obs, a).mean() + cfg.action_l2 * a.pow(2).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            for net, tgt in ((self.actor, self.actor_t), (self.qf1, self.qf1_t),
                             (self.qf2, self.qf2_t)):
                for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                    tp.data.copy_(cfg.tau * p.data + (1 - cfg.tau) * tp.data)


def mlp_macs(in_dim: int, hidden: list[int], out_dim: int) -> int:
    """Multiply-adds of one row through a ReLU MLP."""
    dims = [in_dim, *hidden, out_dim]
    return sum(a * b for a, b in itertools.pairwise(dims))


def update_flops(cfg: Learner, batch_size: int) -> float:
    """Matmul FLOPs of one TD3 update (backward = 2x forward; the actor step's backward
    through the critic needs input gradients only, 1x)."""
    actor = mlp_macs(INPUT_DIM, cfg.hidden_sizes, ACTION_DIM)
    critic = mlp_macs(INPUT_DIM + ACTION_DIM, cfg.hidden_sizes, 1)
    critics = 2 if cfg.algo == "td3" else 1
    delay = cfg.policy_delay if cfg.algo == "td3" else 1
    target = actor + critics * critic
    critic_step = critics * 3 * critic
    actor_step = (3 * actor + 2 * critic) / delay
    return 2.0 * batch_size * (target + critic_step + actor_step)


def matmul_peak_gflops(seconds: float = 2.0) -> float:
    """GFLOP/s of a 2048x1024 @ 1024x1024 float32 matmul on this thread."""
    a, b = torch.randn(2048, 1024), torch.randn(1024, 1024)
    return 2 * 2048 * 1024 * 1024 * rate(lambda: a @ b, seconds) / 1e9


def _one_thread_peak(seconds: float) -> float:
    torch.set_num_threads(1)
    return matmul_peak_gflops(seconds)


def matmul_gflops_on_every_core(seconds: float = 2.0) -> float:
    """Total matmul GFLOP/s of one single-thread process per core, all at once: what the
    box's cores deliver together (2x the one-thread peak only if they share no FPU)."""
    cores = os.cpu_count() or 1
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        return sum(pool.map(_one_thread_peak, [seconds] * cores))


def random_batch(n: int) -> Batch:
    return Batch(
        obs=torch.randn(n, INPUT_DIM),
        action=torch.rand(n, ACTION_DIM) * 2 - 1,
        reward=-(torch.rand(n) > 0.5).float(),
        next_obs=torch.randn(n, INPUT_DIM),
        task=torch.arange(n) % NUM_TASKS,
    )


def rate(fn, seconds: float) -> float:
    for _ in range(20):
        fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="specs/fetch_push.yaml")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the spec's")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--hidden", type=int, nargs="+", default=None,
                        help="default: the spec's")
    parser.add_argument("--pcgrad", action="store_true",
                        help="our update with PCGrad (per-task gradients, projected)")
    parser.add_argument("--signals", action="store_true",
                        help="also time the per-task signals, in our updates' time")
    args = parser.parse_args()
    shipped = load_spec(args.spec).learner
    args.batch_size = args.batch_size or shipped.batch_size
    torch.set_num_threads(1)
    cfg = Learner(hidden_sizes=args.hidden or shipped.hidden_sizes)
    ours = TD3Learner(INPUT_DIM, ACTION_DIM, NUM_TASKS, cfg, torch.device("cpu"),
                      project_gradients=args.pcgrad)
    plain = PlainTD3(cfg)
    batch = random_batch(args.batch_size)
    weights = torch.full((NUM_TASKS,), 1 / NUM_TASKS)
    ours_rates, plain_rates = [], []
    for _ in range(args.repeats):
        ours_rates.append(rate(lambda: ours.update(batch, weights), args.seconds))
        plain_rates.append(rate(lambda: plain.update(batch), args.seconds))
    ours_best, plain_best = max(ours_rates), max(plain_rates)
    signals = {}
    if args.signals:
        signals_best = max(rate(lambda: task_signals(ours, batch, weights), args.seconds)
                           for _ in range(args.repeats))
        signals = {"signals_per_s": round(signals_best, 1),
                   "signals_in_updates": round(ours_best / signals_best, 2)}
    gflop = update_flops(cfg, args.batch_size) / 1e9
    peak = matmul_peak_gflops()
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                   "1 thread",
        "spec": args.spec,
        "batch_size": args.batch_size,
        "hidden_sizes": cfg.hidden_sizes,
        "pcgrad": args.pcgrad,
        "ours_updates_per_s": round(ours_best, 1),
        "plain_updates_per_s": round(plain_best, 1),
        "ratio_ours_over_plain": round(ours_best / plain_best, 3),
        **signals,
        "gflop_per_update": round(gflop, 2),
        "ours_gflops": round(gflop * ours_best, 1),
        "matmul_peak_gflops": round(peak, 1),
        "matmul_gflops_all_cores_at_once": round(matmul_gflops_on_every_core(), 1),
        "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
