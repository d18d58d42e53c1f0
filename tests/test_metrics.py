"""Metrics pipeline: never blocks producers, counts drops, reliable records get through."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.report.metrics import MetricsPipeline
from agent.report.sinks import JsonlSink, TensorBoardSink, WandbSink, _scalars
from tests.conftest import ListSink


def test_full_queue_drops_and_counts_but_reliable_records_wait() -> None:
    sink = ListSink()

    async def scenario() -> MetricsPipeline:
        pipeline = MetricsPipeline([sink], queue_size=3)
        for i in range(10):  # consumer not started: the queue fills
            pipeline.emit({"event": "train", "i": i})
        assert pipeline.dropped == 7
        pipeline.start()
        await pipeline.emit_reliable({"event": "end"})
        await pipeline.close()
        return pipeline

    pipeline = asyncio.run(scenario())
    assert [r.get("i") for r in sink.records] == [0, 1, 2, None]
    assert pipeline.dropped == 7


def test_emit_returns_without_waiting_for_sinks() -> None:
    """A sink blocked on its first record holds up no emit; it gets all of them later."""
    release = threading.Event()

    class Blocking(ListSink):
        def write(self, record: dict) -> None:
            release.wait(timeout=1)  # an emit that waited for sinks would see records here
            super().write(record)

    sink = Blocking()

    async def scenario() -> int:
        pipeline = MetricsPipeline([sink], queue_size=100)
        pipeline.start()
        for i in range(50):
            pipeline.emit({"i": i})
        written_while_blocked = len(sink.records)
        release.set()
        await pipeline.close()
        return written_while_blocked

    assert asyncio.run(scenario()) == 0
    assert [r["i"] for r in sink.records] == list(range(50))


def test_jsonl_sink_writes_one_object_per_line(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "m.jsonl")
    sink.write({"event": "eval", "task": "FetchReach-v4", "success_rate": 0.5})
    sink.write({"event": "end", "env_steps": 10})
    sink.close()
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["eval", "end"]


def test_eval_scalars_are_namespaced_by_task() -> None:
    record = {"event": "eval", "task": "FetchPush-v4", "env_steps": 5, "success_rate": 0.25}
    assert _scalars(record) == {"eval/FetchPush-v4/success_rate": 0.25}


def test_mean_over_tasks_is_namespaced_eval_mean() -> None:
    record = {"event": "eval_mean", "env_steps": 5, "updates": 3, "success_rate": 0.4,
              "tasks": 10}
    assert _scalars(record) == {"eval/mean/updates": 3.0, "eval/mean/success_rate": 0.4}


def test_tensorboard_sink_writes_event_file(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path)
    sink.write({"event": "train", "env_steps": 100, "losses/critic": 0.5})
    sink.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_wandb_sink_runs_offline_without_network_or_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    sink = WandbSink(tmp_path, "offline", "fetch-mt-test", None, {"seed": 1}, run_id="t1")
    sink.write({"event": "train", "env_steps": 100, "losses/critic": 0.5})
    sink.close()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert runs and list(runs[0].glob("*.wandb"))
    # wandb's own tool finds the run to upload (a dry run reaches no server)
    loud = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # the sink set it
    sync = subprocess.run([str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run"],
                          cwd=tmp_path, env=loud, capture_output=True, text=True, timeout=120)
    assert sync.returncode == 0 and "Would sync 1 run(s)" in sync.stdout + sync.stderr, sync
    assert "run-t1.wandb" in sync.stdout + sync.stderr


def test_a_failing_sink_is_disabled_and_the_others_keep_going() -> None:
    class Broken(ListSink):
        def write(self, record: dict) -> None:
            raise OSError("disk full")

    good = ListSink()

    async def scenario() -> MetricsPipeline:
        pipeline = MetricsPipeline([Broken(), good], queue_size=10)
        pipeline.start()
        pipeline.emit({"i": 1})
        await pipeline.emit_reliable({"event": "end"})
        await pipeline.close()
        return pipeline

    pipeline = asyncio.run(scenario())
    assert good.records == [{"i": 1}, {"event": "end"}]
    assert pipeline.failed_sinks == ["Broken"]


def test_jsonl_sink_ends_a_partial_line_left_by_a_killed_run(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"event": "train"}\n{"event": "tr')
    sink = JsonlSink(path)
    sink.write({"event": "end"})
    sink.close()
    assert path.read_text().splitlines()[-1] == '{"event": "end"}'


def test_wandb_key_never_lands_in_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    sink = WandbSink(tmp_path, "offline", "fetch-mt-test", None, {"seed": 1}, run_id="k1")
    sink.write({"event": "train", "env_steps": 1, "losses/critic": 0.1})
    sink.close()
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []
