"""The principal's orchestration with a scripted transport: budget, loss, reassignment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

import agent.run.observer_pool as observer_pool
from agent.report.metrics import MetricsPipeline
from agent.run.principal import Principal
from agent.run.run_signals import RunError
from common.messages import EpisodeBatch, Order, OrderResult
from common.policy import task_shapes
from common.spec import validate_spec
from tests.conftest import ListSink


class ScriptedTransport:
    """Replies with random episodes after ``delay[observer]`` s, or fails for ``failing``
    (after the next of ``fail_delays[observer]`` if given).

    ``replace(observer)`` plays a fresh process joining under a forgotten name.
    """

    def __init__(self, delay: dict[str, float], failing: set[str], shapes: dict) -> None:
        self.delay, self.failing, self.shapes = delay, failing, shapes
        self.fail_delays: dict[str, list[float]] = {}
        self.sent: list[tuple[str, Order]] = []
        self.forgotten: set[str] = set()
        self.rng = np.random.default_rng(0)

    def members(self) -> set[str]:
        return set(self.delay) - self.forgotten

    def forget(self, observer: str) -> None:
        self.forgotten.add(observer)

    def replace(self, observer: str) -> bool:
        assert observer in self.forgotten, "a replacement joins only under a forgotten name"
        self.failing.discard(observer)
        self.forgotten.discard(observer)
        return True

    def submit(self, observer: str, order: Order) -> asyncio.Future:
        self.sent.append((observer, order))
        future = asyncio.get_running_loop().create_future()

        def reply() -> None:
            if observer in self.failing:
                future.set_exception(RuntimeError(f"{observer} died"))
            else:
                batches = [self._episodes(task, n, order) for task, n in order.tasks]
                future.set_result(OrderResult(order.order_id, observer, batches))

        delay = self.delay[observer]
        if observer in self.failing and self.fail_delays.get(observer):
            delay = self.fail_delays[observer].pop(0)
        asyncio.get_running_loop().call_later(delay, reply)
        return future

    def _episodes(self, task: str, n: int, order: Order) -> EpisodeBatch:
        s = self.shapes[task]
        r = self.rng
        return EpisodeBatch(
            task, r.normal(size=(n, s.horizon + 1, s.obs_dim)).astype(np.float32),
            r.normal(size=(n, s.horizon + 1, s.goal_dim)).astype(np.float32),
            r.normal(size=(n, s.horizon, s.goal_dim)).astype(np.float32),
            r.uniform(-1, 1, (n, s.horizon, s.action_dim)).astype(np.float32),
            np.zeros(n, bool), order.policy.version if order.policy else 0,
        )


def make_principal(
    tmp_path: Path, budget: int, delay: dict, failing: set, noise_free_share: float = 0.0,
    replaced: bool = False, **sections,
) -> tuple:
    """A principal over a scripted transport; ``replaced``: lost observers are replaced."""
    spec = validate_spec({
        **sections,
        "scheduler": {"noise_free_share": noise_free_share, **sections.get("scheduler", {})},
        "tasks": sections.get("tasks", ["FetchReach-v4"]), "budget": {"env_steps": budget},
        "eval": {"every_env_steps": 10**6, "episodes": 2},
        "collect": {"episodes_per_task": 2, "orders_in_flight": 2},
        "learner": {"hidden_sizes": [8], "batch_size": 16, "start_after_env_steps": 100,
                    "updates_per_env_step": 0.05, "collect_ahead_env_steps": 10**6},
        "metrics": {"tensorboard": False, "progress_bar": False,
                    "wandb": {"mode": "disabled"}},
    }, "test")
    sink = ListSink()
    transport = ScriptedTransport(delay, failing, dict(zip(spec.tasks, task_shapes(spec.tasks),
                                                          strict=True)))
    principal = Principal(spec, tmp_path, transport, list(delay), MetricsPipeline([sink], 100),
                          replace_observer=transport.replace if replaced else None)
    return principal, transport, sink


def test_work_of_an_observer_lost_after_the_budget_was_dispatched_is_collected(
    tmp_path: Path,
) -> None:
    """Every order is out when B fails: A's slots must wait and take B's task lists."""
    principal, _, sink = make_principal(
        tmp_path, budget=400, delay={"A": 0.01, "B": 0.3}, failing={"B"})
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert end["env_steps"] == 400 and end["observers_lost"] == 1
    assert end["episodes_by_observer"] == {"A": 8, "B": 0}
    lost = [r for r in sink.records if r["event"] == "observer_lost"]
    assert [r["observer"] for r in lost] == ["B"]
    evals = [r for r in sink.records if r["event"] == "eval"]
    assert evals and evals[-1]["env_steps"] == 400


def test_a_replaced_observer_gets_work_and_fresh_weights_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observer_pool, "REJOIN_POLL_S", 0.01)
    principal, transport, sink = make_principal(
        tmp_path, budget=3000, delay={"A": 0.01, "B": 0.02}, failing={"B"}, replaced=True)
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert end["env_steps"] == 3000
    assert (end["observers_lost"], end["observers_rejoined"]) == (1, 1)
    assert end["episodes_by_observer"]["B"] > 0
    events = [r["event"] for r in sink.records if r.get("observer") == "B"]
    assert events == ["observer_lost", "observer_rejoined"]
    after_loss = [order for observer, order in transport.sent if observer == "B"][2:]
    assert after_loss and after_loss[0].policy is not None  # the new process gets weights


def test_a_replacement_waits_until_the_old_process_has_no_order_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B's first order fails at once, its second only after 1 s: the replacement must not
    get work (and its failure count as its own) before then."""
    monkeypatch.setattr(observer_pool, "REJOIN_POLL_S", 0.01)
    principal, transport, sink = make_principal(
        tmp_path, budget=6000, delay={"A": 0.02, "B": 0.02}, failing={"B"}, replaced=True)
    transport.fail_delays["B"] = [0.01, 1.0]
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    rejoined = next(r for r in sink.records if r["event"] == "observer_rejoined")
    assert rejoined["down_s"] >= 0.9
    assert (end["observers_lost"], end["observers_rejoined"]) == (1, 1)


def test_the_only_observer_lost_and_replaced_finishes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observer_pool, "REJOIN_POLL_S", 0.01)
    principal, _, _ = make_principal(
        tmp_path, budget=1500, delay={"A": 0.01}, failing={"A"}, replaced=True)
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert end["env_steps"] == 1500 and "error" not in end
    assert (end["observers_lost"], end["observers_rejoined"]) == (1, 1)


def test_a_dropped_observer_without_replacement_stays_lost(tmp_path: Path) -> None:
    principal, transport, _ = make_principal(
        tmp_path, budget=1500, delay={"A": 0.01, "B": 0.02}, failing={"B"})
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert transport.forgotten == {"B"}
    assert (end["observers_lost"], end["observers_rejoined"]) == (1, 0)


def test_losing_every_observer_stops_the_run_with_an_end_line(tmp_path: Path) -> None:
    principal, _, sink = make_principal(
        tmp_path, budget=400, delay={"A": 0.01, "B": 0.02}, failing={"A", "B"})
    with pytest.raises(RunError, match="every observer is lost"):
        asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    end = sink.records[-1]
    assert end["event"] == "end" and end["observers_lost"] == 2 and "error" in end
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()


def test_budget_is_split_into_orders_that_never_overshoot(tmp_path: Path) -> None:
    principal, transport, _ = make_principal(
        tmp_path, budget=350, delay={"A": 0.01}, failing=set())
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert end["env_steps"] == 350  # 7 episodes: the last order carries one
    collected = [n for _, order in transport.sent if order.explore for _, n in order.tasks]
    assert sum(collected) == 7


def test_rate_limited_dispatch_is_shared_fairly_between_observers(tmp_path: Path) -> None:
    """Learner-bound: one order at a time goes out; observers must take turns."""
    principal, _, _ = make_principal(
        tmp_path, budget=3000, delay={"A": 0.01, "B": 0.01}, failing=set())
    principal.spec.learner.updates_per_env_step = 0.5
    principal.spec.learner.collect_ahead_env_steps = 400
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=120))
    shares = end["episodes_by_observer"]
    assert end["env_steps"] == 3000
    assert abs(shares["A"] - shares["B"]) <= 4, shares


def test_collection_stays_within_collect_ahead_of_what_the_learner_consumed(
    tmp_path: Path,
) -> None:
    """Instant observers, a learner that needs 0.5 updates per env step: every dispatch
    happens while collected + pending steps are under what the updates consumed plus
    ``collect_ahead_env_steps``, and the bound is what holds collection back."""
    principal, transport, _ = make_principal(
        tmp_path, budget=1000, delay={"A": 0.0, "B": 0.0}, failing=set())
    cfg = principal.spec.learner
    cfg.updates_per_env_step, cfg.collect_ahead_env_steps = 0.5, 300
    ahead: list[float] = []
    submit = transport.submit

    def watched(observer: str, order: Order) -> asyncio.Future:
        steps = sum(n * 50 for _, n in order.tasks)  # FetchReach episodes are 50 steps
        consumed = max(cfg.start_after_env_steps, principal.learner.updates / 0.5)
        ahead.append(principal.env_steps + principal.dispatch.pending_steps - steps - consumed)
        return submit(observer, order)

    transport.submit = watched
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=120))
    assert end["env_steps"] == 1000
    assert max(ahead) < 300  # never dispatched past the bound
    assert sum(a >= 200 for a in ahead) >= len(ahead) // 2  # ...and usually up against it


def test_only_noise_free_episodes_are_success_feedback(tmp_path: Path) -> None:
    for share, expected in ((0.0, 0), (1.0, 8)):
        principal, _, sink = make_principal(
            tmp_path / str(share), budget=400, delay={"A": 0.0}, failing=set(),
            noise_free_share=share)
        asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
        assert len(principal.task_mix.scheduler.windows.history[0]) == expected
        evals = [r for r in sink.records if r["event"] == "eval"]
        assert evals[-1]["collect_share"] == 1.0 and evals[-1]["weight"] == 1.0


@pytest.mark.parametrize("sections", [
    {"weighting": {"name": "famo"}},
    {"weighting": {"name": "pcgrad"}},
    {"weighting": {"name": "loss"}},
    {"weighting": {"name": "learning_progress"}},
    {"scheduler": {"name": "learning_progress", "window": 2}},
    {"scheduler": {"name": "curriculum", "window": 2}},
    {"scheduler": {"name": "round_robin"}},
    {"meta": {"update": "reptile", "inner_steps": 2}},
    {"meta": {"update": "fomaml", "inner_steps": 2}},
    {"model": {"arch": "ptsl", "freeze": "hidden"}},
], ids=lambda s: "-".join(f"{v}" for section in s.values() for v in section.values()))
def test_every_strategy_runs_two_tasks_to_the_budget_and_logs_shares_and_weights(
    tmp_path: Path, sections: dict,
) -> None:
    principal, _, sink = make_principal(
        tmp_path, budget=1500, delay={"A": 0.0}, failing=set(), noise_free_share=0.5,
        tasks=["FetchReach-v4", "FetchReachDense-v4"], **sections)
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=60))
    assert end["env_steps"] == 1500 and end["updates"] >= 70
    final = [r for r in sink.records if r["event"] == "eval"][-2:]
    assert sum(r["collect_share"] for r in final) == pytest.approx(1.0)
    assert sum(r["weight"] for r in final) == pytest.approx(1.0, abs=1e-5)
    if sections.get("weighting", {}).get("name") in ("famo", "loss"):
        assert final[0]["weight"] != pytest.approx(0.5, abs=1e-4)  # losses moved them


def test_the_last_evaluation_is_one_of_the_final_weights_and_comes_once(tmp_path: Path) -> None:
    """Instant observers finish collecting long before the learner: the evaluation due at
    the budget waits for the final weights instead of evaluating stale ones first."""
    principal, _, sink = make_principal(tmp_path, budget=400, delay={"A": 0.0}, failing=set())
    principal.spec.eval.every_env_steps = principal.evaluator.next_eval = 200
    principal.spec.learner.updates_per_env_step = 0.5
    end = asyncio.run(asyncio.wait_for(principal.run(), timeout=120))
    at_budget = [r for r in sink.records if r.get("event") == "eval" and r["env_steps"] == 400]
    assert len(at_budget) == 1 and at_budget[0]["updates"] == end["updates"] == 200
    assert at_budget[0]["collect_share"] > 0  # episodes arrived since the evaluation before
