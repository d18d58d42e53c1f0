"""Spec validation: bad input exits 2 with one line naming the file and key; overrides work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from common.spec import SpecError, load_spec
from tests.conftest import run_main

VALID = """
tasks: [FetchReach-v4]
budget: {env_steps: 1000}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


BAD_SPECS = [
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nfoo: 1\n", "unknown key 'foo'"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nlearner: {bogus: 1}\n",
     "unknown key 'learner.bogus'"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nobservers: two\n", "observers"),
    ("tasks: [FetchFly-v4]\nbudget: {env_steps: 10}\n", "unknown env id 'FetchFly-v4'"),
    ("tasks: [PandaFly-v3]\nbudget: {env_steps: 10}\n", "unknown env id 'PandaFly-v3'"),
    ("tasks: [FetchReach-v4, PandaReach-v2]\nbudget: {env_steps: 10}\n",
     "unknown env id 'PandaReach-v2'"),
    ("tasks: [reach-v3, fly-v3]\nbudget: {env_steps: 10}\n", "unknown env id 'fly-v3'"),
    ("tasks: [MT10, FetchPush-v4]\nbudget: {env_steps: 10}\n",
     "Meta-World tasks (reach-v3, push-v3,"),
    ("tasks: [MT10, reach-v3]\nbudget: {env_steps: 10}\n", "each task may appear once"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 0}\n", "budget.env_steps"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: -5}\n", "budget.env_steps"),
    ("tasks: [FetchReach-v4]\n", "missing required key 'budget'"),
    ("tasks: [FetchReach-v4\nbudget: {env_steps: 10}\n", "malformed YAML at line"),
    ("- just\n- a list\n", "must be a mapping"),
    ("tasks: []\nbudget: {env_steps: 10}\n", "tasks"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nscheduler: {order: [FetchPush-v4]}\n",
     "scheduler.order must list each of tasks"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nscheduler: {name: greedy}\n",
     "scheduler.name"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nmodel: {arch: transformer}\n",
     "model.arch"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nmodel: {freeze: shared}\n",
     "model.freeze: shared needs task-specific parameters"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\n"
     "scheduler: {name: learning_progress, noise_free_share: 0}\n",
     "scheduler.noise_free_share: 0 leaves the success feedback"),
    ("tasks: [FetchReach-v4]\nbudget: {env_steps: 10}\nweighting: {name: pcgrad}\n"
     "meta: {update: reptile}\n", "weighting.name pcgrad"),
]


@pytest.mark.parametrize("text, expected", BAD_SPECS)
def test_bad_spec_exits_2_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert main(["--spec", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert str(path) in err and expected in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("learner.nope=1", "no spec key 'learner.nope'"),
        ("nope.deeper=1", "no spec key 'nope'"),
        ("observers=abc", "observers"),
        ("novalue", "expected KEY=VALUE"),
    ],
)
def test_bad_override_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, override: str, expected: str
) -> None:
    path = write(tmp_path, VALID)
    assert main(["--spec", str(path), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err


def test_missing_spec_file_exits_2_from_the_command_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_main("--spec", str(missing), timeout=120)
    assert result.returncode == 2
    assert f"{missing}: spec file not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content, expected", [
    ("tasks: [FetchReach-v4]\nseed: 1 # caf\xe9\n".encode("latin-1"), "not a UTF-8 text file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a UTF-8 text file"),
    (b"- FetchReach-v4\n- FetchPush-v4\n", "the spec must be a mapping of keys, got list"),
    (b"just a sentence\n", "the spec must be a mapping of keys, got str"),
])
def test_a_spec_that_is_not_utf8_yaml_mapping_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes, expected: str
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    assert main(["--spec", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert str(path) in err and expected in err


def test_unknown_key_exits_2_from_the_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "learner: {lr: 3}\n")
    result = run_main("--spec", str(path), timeout=120)
    assert result.returncode == 2
    assert "unknown key 'learner.lr'" in result.stderr and "Traceback" not in result.stderr


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    spec = load_spec(path, [
        "tasks=[FetchReach-v4,FetchPush-v4]",
        "learner.hidden_sizes=[32, 32]",
        "replay.her.strategy=final",
        "metrics.wandb.mode=disabled",
        "budget.env_steps=5000",
    ])
    assert spec.tasks == ["FetchReach-v4", "FetchPush-v4"]
    assert spec.learner.hidden_sizes == [32, 32]
    assert spec.replay.her.strategy == "final"
    assert spec.metrics.wandb.mode == "disabled"
    assert spec.budget.env_steps == 5000


def test_defaults_fill_unspecified_keys(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, VALID))
    assert spec.replay.her.strategy == "future" and spec.replay.her.k == 4
    assert spec.learner.algo == "td3"
    assert spec.distributed.master_addr == "127.0.0.1"


def test_shipped_specs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "specs"
    for path in sorted(root.glob("*.yaml")):
        load_spec(path)


def test_duplicate_tasks_rejected(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="each task may appear once"):
        load_spec(write(tmp_path, "tasks: [FetchReach-v4, FetchReach-v4]\nbudget: {env_steps: 9}"))


def test_resume_needs_the_same_number_of_learner_ranks() -> None:
    from agent.cli import UsageError, _check_same_ranks

    saved_with_two = {"counters": {"replay_episodes_by_rank": [[3]]}}
    with pytest.raises(UsageError, match="mpiexec -n 2"):
        _check_same_ranks(saved_with_two, None, Path("run"))

    class OneOfThree:
        def Get_size(self) -> int:
            return 3

    with pytest.raises(UsageError, match="without mpiexec"):
        _check_same_ranks({"counters": {"replay_episodes_by_rank": []}}, OneOfThree(), Path("r"))
    _check_same_ranks({"counters": {}}, None, Path("run"))  # plain run, plain resume: fine


def test_moved_goal_share_is_one_for_all_or_per_task(tmp_path: Path) -> None:
    from agent.learn.build import build_batcher
    from common.policy import build_encoder

    path = write(tmp_path, "tasks: [FetchPush-v4, FetchSlide-v4]\nbudget: {env_steps: 10}\n"
                           "replay: {moved_goal_share: {FetchPush-v4: 0.5}}\n")
    spec = load_spec(path)
    assert [spec.replay.moved_goal_share_of(t) for t in spec.tasks] == [0.5, 0.0]
    batcher = build_batcher(spec, build_encoder(spec), 1000, np.random.default_rng(0))
    assert [s.moved_goal_share for s in batcher.samplers] == [0.5, 0.0]
    every = load_spec(path, ["replay.moved_goal_share=0.3"])
    assert [every.replay.moved_goal_share_of(t) for t in every.tasks] == [0.3, 0.3]


@pytest.mark.parametrize("section, key", [("replay", "moved_goal_share"),
                                          ("collect", "grasped_start_share")])
def test_a_per_task_setting_for_a_task_not_trained_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, section: str, key: str
) -> None:
    path = write(tmp_path, "tasks: [FetchPush-v4]\nbudget: {env_steps: 10}\n"
                           f"{section}: {{{key}: {{FetchSlide-v4: 0.5}}}}\n")
    assert main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{section}.{key} names ['FetchSlide-v4'], not in tasks" in err and str(path) in err


def test_a_grasped_start_for_a_task_without_a_gripped_object_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write(tmp_path, "tasks: [FetchPush-v4]\nbudget: {env_steps: 10}\n"
                           "collect: {grasped_start_share: {FetchPush-v4: 0.5}}\n")
    assert main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert "collect.grasped_start_share names ['FetchPush-v4']: only" in err
    assert str(path) in err
