"""Metric sinks: metrics.jsonl, TensorBoard, wandb (offline by default), console progress."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from agent.report.metrics import Record

SCALAR_SKIP = {"event", "task", "env_steps", "tasks"}


def _scalars(record: Record) -> dict[str, float]:
    """The numeric fields of a record, eval fields namespaced by task (``eval/mean/`` for the
    mean over tasks); none of a video's."""
    if record.get("event") == "video":
        return {}
    prefix = {"eval": f"eval/{record.get('task')}/", "eval_mean": "eval/mean/"}.get(
        str(record.get("event")), "")
    return {
        prefix + key: float(value)
        for key, value in record.items()
        if key not in SCALAR_SKIP and isinstance(value, int | float) and not isinstance(value, bool)
    }


class JsonlSink:
    """One JSON object per line, flushed per record so a killed run keeps its lines."""

    def __init__(self, path: Path) -> None:
        partial = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(
            b"\n"
        )
        self.path = path
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 (closed in close())
        if partial:  # a killed run left half a line: end it so the next record parses
            self._file.write("\n")

    def write(self, record: Record) -> None:
        try:
            self._file.write(json.dumps(record) + "\n")
        except OSError as exc:
            exc.filename = exc.filename or str(self.path)
            raise

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalars keyed by metric name, stepped by total env steps; videos as animated GIFs
    (TensorBoard's own video format, shown under Images)."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(run_dir / "tensorboard"))
        self._run_dir = run_dir

    def write(self, record: Record) -> None:
        step = int(record.get("env_steps", 0))
        if record.get("event") == "video":
            try:
                self._write_video(record, step)
            except Exception as exc:  # one unreadable video must not cost the scalars
                print(f"warning: TensorBoard: {record['video']}: {exc}", file=sys.stderr)
        for key, value in _scalars(record).items():
            self._writer.add_scalar(key, value, step)

    def _write_video(self, record: Record, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        from agent.report.video import gif_bytes, read_frames

        frames = read_frames(self._run_dir / record["video"])
        image = Summary.Image(height=frames.shape[1], width=frames.shape[2], colorspace=3,
                              encoded_image_string=gif_bytes(frames))
        summary = Summary(value=[Summary.Value(tag=f"video/{record['task']}", image=image)])
        self._writer._get_file_writer().add_summary(summary, step)

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """wandb run in the run directory; offline unless the spec says online."""

    def __init__(self, run_dir: Path, mode: str, project: str, entity: str | None,
                 config: dict, run_id: str) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self._run_dir, self._video = run_dir, wandb.Video

        self._run = wandb.init(
            project=project, entity=entity, mode=mode, dir=str(run_dir), config=config,
            id=run_id, resume="allow", settings=wandb.Settings(console="off"),
        )

    def write(self, record: Record) -> None:
        logged: dict = _scalars(record)
        if record.get("event") == "video":
            try:
                video = self._video(str(self._run_dir / record["video"]), format="mp4")
            except Exception as exc:  # one unreadable video must not cost the scalars
                print(f"warning: wandb: {record['video']}: {exc}", file=sys.stderr)
                return
            logged = {f"video/{record['task']}": video}
        if logged:
            self._run.log({**logged, "env_steps": int(record.get("env_steps", 0))})

    def close(self) -> None:
        self._run.finish()


class ProgressSink:
    """A tqdm bar over the env-step budget showing the latest success rates."""

    def __init__(self, total: int, initial: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                         mininterval=1.0)
        self._success: dict[str, float] = {}

    def write(self, record: Record) -> None:
        if record.get("event") == "eval":
            self._success[record["task"]] = record["success_rate"]
            self._bar.set_postfix({t.removeprefix("Fetch"): f"{s:.2f}"
                                   for t, s in self._success.items()})
        steps = int(record.get("env_steps", self._bar.n))
        if steps > self._bar.n:
            self._bar.update(steps - self._bar.n)

    def close(self) -> None:
        self._bar.close()
