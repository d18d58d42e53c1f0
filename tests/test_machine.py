"""A local run refuses observers that this machine's memory cannot hold, before starting any."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.machine import check_local_observers_fit, observer_memory_bytes
from common.spec import SpecError, validate_spec
from tests.conftest import run_main


def test_observers_that_fit_pass_and_one_more_is_refused_naming_the_key() -> None:
    spec = validate_spec({"tasks": ["FetchPush-v4"], "observers": 4,
                          "budget": {"env_steps": 1000}}, "test")
    need = observer_memory_bytes(spec)
    check_local_observers_fit(spec, available=4 * need)
    with pytest.raises(SpecError, match=r"observers: 4 .* at most 3 fit"):
        check_local_observers_fit(spec, available=4 * need - 1)


def test_a_fork_bomb_count_exits_2_before_any_process_or_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(run_dir),
                      "--set", "observers=100000", timeout=60)
    assert result.returncode == 2
    assert "observers: 100000" in result.stderr and "Traceback" not in result.stderr
    assert not run_dir.exists()
