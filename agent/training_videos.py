"""Videos during training: one noise-free episode per task every
``eval.video_every_env_steps``, rendered in a thread so the run goes on meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import torch

from agent.metrics import MetricsPipeline
from agent.online_eval import EVAL_SEED_OFFSET
from agent.schedule import next_multiple
from agent.video import RenderedEpisode, record_video
from common.messages import PolicySnapshot
from common.policy import build_policy
from common.spec import Spec


class TrainingVideos:
    """Writes ``videos/<task>/<env steps>.mp4`` and a ``video`` record per task."""

    def __init__(self, spec: Spec, run_dir: Path, metrics: MetricsPipeline) -> None:
        every = spec.eval.video_every_env_steps
        assert every is not None, "videos are off in this spec"
        self.every, self.run_dir, self.metrics = every, run_dir, metrics
        self.tasks = list(spec.tasks)
        self.seed = spec.seed + EVAL_SEED_OFFSET  # the same goals in every video
        self._policy = build_policy(spec)
        self.next_due = every

    def start_at(self, env_steps: int) -> None:
        """Schedule the first video after ``env_steps`` (a resumed run's count)."""
        self.next_due = next_multiple(env_steps, self.every)

    async def record(self, snapshot: PolicySnapshot, env_steps: int, wall_time_s: float) -> None:
        """One episode per task with the weights of ``snapshot``."""
        self.next_due = next_multiple(env_steps, self.every)
        self._policy.load(snapshot)
        for task in self.tasks:
            relative = Path("videos") / task / f"{env_steps:09d}.mp4"
            episode = await asyncio.to_thread(self._render, task, self.run_dir / relative)
            await self.metrics.emit_reliable({
                "event": "video", "task": task, "env_steps": env_steps,
                "updates": snapshot.version, "wall_time_s": round(wall_time_s, 3),
                "success": episode.success, "video": str(relative),
            })

    def _render(self, task: str, path: Path) -> RenderedEpisode:
        torch.set_num_threads(1)  # per thread under OpenMP: see observer/worker.py
        return record_video(self._policy, self.tasks, task, 1, self.seed, path)[0]
