"""Transfer through main.py: a source that cannot be used (tests/test_learning.py has one
that can)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import QUIET, run_main

pytestmark = pytest.mark.slow


def test_unusable_transfer_source_exits_2_naming_the_key(tmp_path: Path) -> None:
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(tmp_path / "r"),
                      "--set", "transfer.from_checkpoint=/nonexistent.pt", *QUIET, timeout=120)
    assert result.returncode == 2
    assert "transfer.from_checkpoint" in result.stderr and "Traceback" not in result.stderr
