"""The transfer benchmark's plan: sources kept with their checkpoints, each target variant
started from the right one, a stopped source holding its targets back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import summarize, transfer
from common.spec import load_spec

MAIN_JOB = load_spec("specs/fetch_mt.yaml")


def fake_train(calls: dict[str, list[str]], stop: set[str]):
    """A ``train`` that records each run's overrides and writes a finished run (success
    0.2 then 0.6) with a checkpoint, or a stopped one for the names in ``stop``."""

    def train(spec: str, run_dir: Path, overrides: list[str], minutes: float | None) -> None:
        calls[run_dir.name] = [o.removeprefix("--set=") for o in overrides]
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / "latest.pt").write_bytes(b"weights of " + run_dir.name.encode())
        task = next(o for o in calls[run_dir.name] if o.startswith("tasks="))[7:-1]
        lines = [{"event": "eval", "task": task, "env_steps": 100 * k, "wall_time_s": 60.0 * k,
                  "success_rate": value} for k, value in ((1, 0.2), (2, 0.6))]
        lines.append({"event": "end", "stopped": run_dir.name in stop})
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        (run_dir / "spec.yaml").write_text(f"tasks: [{task}]\n")

    return train


@pytest.fixture(autouse=True)
def bench_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's runs and kept results under its ``tmp_path``, not the repository's."""
    monkeypatch.setattr(transfer, "OUT", tmp_path / "out" / "transfer")
    monkeypatch.setattr(summarize, "RESULTS", tmp_path / "results")


def test_targets_start_from_their_kept_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(summarize, "train", fake_train(calls, stop={"t_source_lora_s1"}))
    monkeypatch.setattr("sys.argv", ["transfer", "--seeds", "1", "--name", "t"])
    transfer.main()

    kept = tmp_path / "results" / "transfer"
    assert (kept / "t_source_onehot_s1.pt").read_bytes() == b"weights of t_source_onehot_s1"
    assert (kept / "t_finetune_s1.pt").read_bytes() == b"weights of t_finetune_s1"
    assert "tasks=[FetchPush-v4]" in calls["t_source_onehot_s1"]
    finetune = calls["t_finetune_s1"]
    assert f"transfer.from_checkpoint={kept / 't_source_onehot_s1.pt'}" in finetune
    assert "tasks=[FetchPickAndPlace-v4]" in finetune
    assert not any(o.startswith("transfer.lr_multiplier") for o in finetune)
    half_lr = calls["t_finetune_half_lr_s1"]
    assert f"transfer.from_checkpoint={kept / 't_source_onehot_s1.pt'}" in half_lr
    assert "transfer.lr_multiplier=0.5" in half_lr
    assert not any(o.startswith("transfer.") for o in calls["t_scratch_s1"])
    # the target gets the main job's PickAndPlace recipe, the Push source does not
    for run in ("t_scratch_s1", "t_finetune_s1"):
        assert "collect.grasped_start_share={FetchPickAndPlace-v4: 0.5}" in calls[run]
    assert not any(o.startswith("collect.grasped") for o in calls["t_source_onehot_s1"])
    assert "t_adapters_s1" not in calls  # its lora source was stopped
    rows = (tmp_path / "out" / "transfer" / "t.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1].startswith("scratch,1,FetchPickAndPlace-v4,200,2.0")

    calls.clear()  # a later session: finished runs are kept, the stopped source resumes
    monkeypatch.setattr(summarize, "train", fake_train(calls, stop=set()))
    transfer.main()
    assert set(calls) == {"t_source_lora_s1", "t_adapters_s1"}
    adapters = calls["t_adapters_s1"]
    assert "model.freeze=shared" in adapters
    assert f"transfer.from_checkpoint={kept / 't_source_lora_s1.pt'}" in adapters


def test_the_target_recipe_is_the_main_jobs_and_fits_the_push_spec() -> None:
    recipe = summarize.task_recipe(MAIN_JOB, "FetchPickAndPlace-v4")
    spec = load_spec("specs/fetch_push.yaml", ["tasks=[FetchPickAndPlace-v4]", *recipe])
    assert spec.collect.grasped_start_share == MAIN_JOB.collect.grasped_start_share == {
        "FetchPickAndPlace-v4": 0.5}
    slide = load_spec("specs/fetch_push.yaml", [
        "tasks=[FetchSlide-v4]", *summarize.task_recipe(MAIN_JOB, "FetchSlide-v4")])
    assert slide.replay.moved_goal_share == 0.0  # the main job samples Slide uniformly
    assert summarize.task_recipe(MAIN_JOB, "FetchReach-v4") == []


def test_one_task_of_the_main_job_alone_keeps_its_recipe() -> None:
    for task in ("FetchPush-v4", "FetchPickAndPlace-v4", "FetchSlide-v4"):
        recipe = summarize.task_recipe(MAIN_JOB, task)
        alone = load_spec("specs/fetch_mt.yaml", [f"tasks=[{task}]", *recipe])
        assert alone.tasks == [task]
        assert set(alone.collect.grasped_start_share) <= {task}


def test_variants_split_the_benchmark_over_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[str]] = {}
    monkeypatch.setattr(summarize, "train", fake_train(calls, stop=set()))
    monkeypatch.setattr("sys.argv", ["transfer", "--seeds", "1", "--name", "t",
                                     "--variants", "finetune"])
    transfer.main()
    assert set(calls) == {"t_source_onehot_s1", "t_finetune_s1"}  # no lora source

    calls.clear()  # a later session, on a fresh machine: the finetune run is kept
    shutil.rmtree(tmp_path / "out")
    monkeypatch.setattr("sys.argv", ["transfer", "--seeds", "1", "--name", "t",
                                     "--variants", "scratch"])
    transfer.main()
    assert set(calls) == {"t_scratch_s1"}
    rows = (tmp_path / "out" / "transfer" / "t.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["scratch", "finetune"]


def test_an_unknown_variant_is_refused(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.argv", ["transfer", "--variants", "scratch,distill"])
    with pytest.raises(SystemExit) as exit_:
        transfer.main()
    assert exit_.value.code == 2 and "--variants: unknown distill" in capsys.readouterr().err
