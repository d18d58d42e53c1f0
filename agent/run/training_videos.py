"""Videos during training: one noise-free episode per task every
``eval.video_every_env_steps``, rendered in a thread so the run goes on meanwhile."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from agent.report.metrics import MetricsPipeline
from agent.report.video import VideoError, record_video
from agent.run.online_eval import EVAL_SEED_OFFSET
from agent.run.schedule import next_multiple
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
        self.seed = spec.seed + EVAL_SEED_OFFSET  # one reset seed: the same goal every time
        self._policy = build_policy(spec)
        self.next_due = every
        self.failed = False
        """A video failed (no EGL library, say): no more are recorded."""

    def start_at(self, env_steps: int) -> None:
        """Schedule the first video after ``env_steps`` (a resumed run's count)."""
        self.next_due = next_multiple(env_steps, self.every)

    async def record(self, snapshot: PolicySnapshot, env_steps: int, wall_time_s: float,
                     stopping: Callable[[], bool]) -> None:
        """One episode per task with the weights of ``snapshot`` (until a stop). A video
        that fails is a warning, and the run records no more: it never stops training."""
        self.next_due = next_multiple(env_steps, self.every)
        self._policy.load(snapshot)
        for task in self.tasks:
            if stopping() or self.failed:
                return
            relative = Path("videos") / task / f"{env_steps:09d}.mp4"
            try:
                success = await asyncio.to_thread(self._render, task, self.run_dir / relative)
            except VideoError as exc:
                print(f"warning: no more videos in this run: {exc}", file=sys.stderr)
                self.failed = True
                return
            await self.metrics.emit_reliable({
                "event": "video", "task": task, "env_steps": env_steps,
                "updates": snapshot.version, "wall_time_s": round(wall_time_s, 3),
                "success": success, "video": str(relative),
            })

    def _render(self, task: str, path: Path) -> bool:
        torch.set_num_threads(1)  # per thread under OpenMP: see observer/worker.py
        return record_video(self._policy, self.tasks, task, [self.seed], path)[0]
