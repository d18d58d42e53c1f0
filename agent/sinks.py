"""Metric sinks: metrics.jsonl, TensorBoard, wandb (offline by default), console progress."""

from __future__ import annotations

import json
import os
from pathlib import Path

from agent.metrics import Record

SCALAR_SKIP = {"event", "task", "env_steps"}


def _scalars(record: Record) -> dict[str, float]:
    """The numeric fields of a record, eval fields namespaced by task."""
    prefix = f"eval/{record['task']}/" if record.get("event") == "eval" else ""
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
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 (closed in close())
        if partial:  # a killed run left half a line: end it so the next record parses
            self._file.write("\n")

    def write(self, record: Record) -> None:
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()


class TensorBoardSink:
    """Scalars keyed by metric name, stepped by total env steps."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(log_dir))

    def write(self, record: Record) -> None:
        step = int(record.get("env_steps", 0))
        for key, value in _scalars(record).items():
            self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """wandb run in the run directory; offline unless the spec says online."""

    def __init__(self, run_dir: Path, mode: str, project: str, entity: str | None,
                 config: dict, run_id: str) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self._run = wandb.init(
            project=project, entity=entity, mode=mode, dir=str(run_dir), config=config,
            id=run_id, resume="allow", settings=wandb.Settings(console="off"),
        )

    def write(self, record: Record) -> None:
        scalars = _scalars(record)
        if scalars:
            self._run.log({**scalars, "env_steps": int(record.get("env_steps", 0))})

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
