"""The strategy study's summaries and the signal analysis, on run records written here."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from bench import signals, study, summarize
from common.spec import load_spec


def write_run(directory: Path, success: dict[str, list[float]],
              td_abs: dict[str, list[float]]) -> None:
    """A run whose evaluations come every 100 env steps, with one train record (with
    signals) inside each window."""
    directory.mkdir(parents=True)
    lines = []
    for k in range(len(next(iter(success.values())))):
        lines.append({"event": "train", "env_steps": 100 * k + 50,
                      **{f"signals/td_abs/{t}": v[k] for t, v in td_abs.items()}})
        for task, values in success.items():
            lines.append({"event": "eval", "task": task, "env_steps": 100 * (k + 1),
                          "wall_time_s": 60.0 * (k + 1), "success_rate": values[k]})
    (directory / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_study_summary_reads_thresholds_final_and_mean_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path)
    write_run(tmp_path / "uniform_s1", {"Push": [0.1, 0.6, 0.7, 0.95, 1.0],
                                        "Slide": [0.0, 0.2, 0.6, 0.4, 0.5]},
              {"Push": [1.0] * 5, "Slide": [1.0] * 5})
    rows = {r["task"]: r for r in study.summary("uniform", 1)}
    assert rows["Push"]["env_steps_to_0.5"] == 200 and rows["Push"]["minutes_to_0.5"] == 2.0
    assert rows["Push"]["env_steps_to_0.9"] == 400
    assert rows["Slide"]["env_steps_to_0.5"] == 500  # 0.6 then 0.4: the last one counts alone
    assert rows["Slide"]["env_steps_to_0.9"] is None
    assert rows["Push"]["mean_success"] == pytest.approx(0.67)
    assert rows["Push"]["env_steps_all_to_0.5"] == 500


def test_a_signal_that_foretells_the_gain_ranks_with_it(tmp_path: Path) -> None:
    success = [0.0, 0.1, 0.3, 0.4, 0.8, 0.85, 0.9, 1.0]
    gains = [b - a for a, b in itertools.pairwise(success)]
    # the signal's level in the window ending at evaluation k is the gain from k to k + 1
    td = [*gains, 0.0]
    write_run(tmp_path / "a_s1", {"Push": success}, {"Push": td})
    rows = signals.windows(tmp_path / "a_s1")
    assert len(rows) == len(success) - 2
    by_name = {c["predictor"]: c for c in signals.correlations(rows)}
    assert by_name["signals/td_abs level"]["spearman"] == pytest.approx(1.0)
    assert by_name["signals/grad_norm level"]["n"] == 0  # not recorded in this run


def test_a_kept_run_is_read_to_the_study_budget_and_not_trained_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path / "out" / "study")
    monkeypatch.setattr(summarize, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(study, "ENV_STEPS", 300)
    longer = tmp_path / "study" / "uniform_s2"  # a run of another session's machine
    write_run(longer, {"Push": [0.1, 0.6, 0.7, 0.95, 1.0]}, {"Push": [1.0] * 5})
    (longer / "spec.yaml").write_text("seed: 2\n")
    with open(longer / "metrics.jsonl", "a") as records:
        records.write('{"event": "train", "env_st')  # the half-written line of a kill
    summarize.keep(longer)
    assert (tmp_path / "results" / "study" / "uniform_s2.jsonl.gz").exists()

    assert study.study_runs() == [tmp_path / "out" / "study" / "uniform_s2"]
    unpacked = tmp_path / "out" / "study" / "uniform_s2"
    assert (unpacked / "spec.yaml").read_text() == "seed: 2\n"  # the spec it was made with
    rows = study.summary("uniform", 2)
    assert rows[0]["final_success"] == 0.7  # the evaluation at 300 env steps, not 500's 1.0
    assert rows[0]["env_steps_to_0.9"] is None

    def train(*args: object) -> None:
        raise AssertionError("a kept run was trained again")

    monkeypatch.setattr(summarize, "train", train)
    monkeypatch.setattr("sys.argv", ["study", "--configs", "uniform", "--seeds", "2"])
    study.main()
    assert (tmp_path / "out" / "study" / "study.csv").read_text().count("uniform") == 1


def test_the_table_gives_each_seed_and_the_spread() -> None:
    row = {"config": "uniform", "task": "Push", "env_steps_to_0.5": 200_000,
           "env_steps_to_0.9": None, "env_steps_all_to_0.5": 1_150_000,
           "final_success": 0.9, "mean_success": 0.6, "collect_share": 0.3}
    rows = [{**row, "seed": 2}, {**row, "seed": 3, "env_steps_to_0.9": 750_000,
                                 "final_success": 1.0, "mean_success": 0.7,
                                 "collect_share": 0.4}]
    line = study.table(rows).splitlines()[2]
    assert line == ("| uniform | Push | 2, 3 | 0.20M / 0.20M | — / 0.75M | 1.15M / 1.15M "
                    "| 0.95 (0.90–1.00) | 0.65 (0.60–0.70) | 0.35 (0.30–0.40) |")


def test_the_gain_can_be_measured_several_windows_ahead(tmp_path: Path) -> None:
    success = [0.0, 0.1, 0.3, 0.4, 0.8, 0.85, 0.9, 1.0, 1.0]
    two_ahead = [success[k + 2] - success[k] if k + 2 < len(success) else 0.0
                 for k in range(len(success))]
    write_run(tmp_path / "a_s1", {"Push": success}, {"Push": two_ahead})
    rows = signals.windows(tmp_path / "a_s1", ahead=2)
    assert len(rows) == len(success) - 3
    assert [r["gain"] for r in rows] == pytest.approx(two_ahead[1:-2])
    by_name = {c["predictor"]: c for c in signals.correlations(rows)}
    assert by_name["signals/td_abs level"]["spearman"] == pytest.approx(1.0)


def test_a_distractor_joins_the_main_jobs_tasks_and_is_left_out_of_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(study, "OUT", tmp_path / "out" / "study")
    monkeypatch.setattr(summarize, "RESULTS", tmp_path / "results")
    seen: dict[str, list[str]] = {}

    def train(spec: str, run_dir: Path, overrides: list[str], minutes: float | None) -> None:
        seen[run_dir.name] = [o.removeprefix("--set=") for o in overrides]
        write_run(run_dir, {"FetchPush-v4": [0.6, 0.7], "PandaStack-v3": [0.0, 0.0]},
                  {"FetchPush-v4": [1.0, 1.0]})

    monkeypatch.setattr(summarize, "train", train)
    monkeypatch.setattr("sys.argv", ["study", "--configs", "learnability", "--seeds", "3",
                                     "--distractor", "PandaStack-v3"])
    study.main()
    overrides = seen["learnability+PandaStack-v3_s3"]
    spec = load_spec("specs/fetch_mt.yaml", overrides)  # the main job's per-task dicts fit
    assert spec.tasks == [*load_spec("specs/fetch_mt.yaml").tasks, "PandaStack-v3"]
    assert spec.scheduler.name == "learnability" and spec.seed == 3
    with open(tmp_path / "out" / "study" / "study.csv") as table:
        rows = list(csv.DictReader(table))
    assert {r["env_steps_all_to_0.5"] for r in rows} == {"100"}  # Push alone counts
