"""main.py plot: several runs in one figure; seeds of one spec as one group."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agent.report.plotting import group_by_spec
from tests.conftest import run_main


def fake_run(root: Path, name: str, tasks: list[str], seed: int = 1) -> Path:
    run_dir = root / name
    run_dir.mkdir()
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({"tasks": tasks, "seed": seed}))
    records = [{"event": "eval", "task": task, "env_steps": steps, "wall_time_s": steps / 10,
                "success_rate": steps / 400, "collect_share": 1 / len(tasks),
                "weight": 1 / len(tasks)} for steps in (100, 200, 300) for task in tasks]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run_dir


def test_seeds_of_one_spec_form_one_group(tmp_path: Path) -> None:
    runs = [fake_run(tmp_path, "push_s1", ["FetchPush-v4"], seed=1),
            fake_run(tmp_path, "push_s2", ["FetchPush-v4"], seed=2),
            fake_run(tmp_path, "slide", ["FetchSlide-v4"], seed=1)]
    groups = group_by_spec(runs)
    assert groups == {"push_s1 (2 seeds)": runs[:2], "slide": runs[2:]}


def test_two_runs_with_different_tasks_in_one_figure_and_a_non_run_exits_2(
    tmp_path: Path,
) -> None:
    a = fake_run(tmp_path, "a", ["FetchPush-v4"])
    b = fake_run(tmp_path, "b", ["FetchSlide-v4", "FetchPush-v4"])
    out = tmp_path / "compare.png"
    result = run_main("plot", str(a), str(b), "--out", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    result = run_main("plot", str(a), str(not_a_run), timeout=60)
    assert result.returncode == 2 and str(not_a_run) in result.stderr
    assert "Traceback" not in result.stderr
