"""Observers must run the agent's code and spec: a mismatched one is refused at join, and a
reply that is not episodes is that observer's failure, never a result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.run.transport import ObserverFailed, checked_reply
from common.fingerprint import code_version, differences, fingerprint
from common.messages import OrderResult
from common.rpc_group import free_port
from common.spec import load_spec
from tests.conftest import QUIET, REPO, run_main, start_main


def test_the_fingerprint_covers_tasks_collection_and_network_but_not_the_learner_pace() -> None:
    base = load_spec("specs/fetch_reach.yaml")
    same = load_spec("specs/fetch_reach.yaml", ["learner.updates_per_env_step=0.5",
                                                 "budget.env_steps=99"])
    assert differences(fingerprint(base), fingerprint(same)) == []
    for override, part in (("tasks=[FetchPush-v4]", "spec tasks"),
                           ("collect.envs_per_observer=7", "spec collect"),
                           ("learner.hidden_sizes=[8]", "spec network"),
                           ("model.arch=multihead", "spec network")):
        differ = differences(fingerprint(base),
                             fingerprint(load_spec("specs/fetch_reach.yaml", [override])))
        assert len(differ) == 1 and differ[0].startswith(part), (override, differ)


def test_another_code_version_is_named() -> None:
    agent = fingerprint(load_spec("specs/fetch_reach.yaml"))
    observer = {**agent, "code": "0123456789ab"}
    assert differences(agent, observer) == [
        f"code version: agent {code_version()}, observer 0123456789ab"]


def test_a_reply_that_is_not_episodes_is_the_observers_failure() -> None:
    result = OrderResult(1, "observer1")
    assert checked_reply("observer1", result) is result
    with pytest.raises(ObserverFailed, match="observer1's collection failed: ValueError"):
        checked_reply("observer1", ValueError("'FetchPush-v4' is not in list"))
    with pytest.raises(ObserverFailed, match="answered with a dict"):
        checked_reply("observer1", {"batches": []})


@pytest.mark.slow
def test_an_observer_with_another_spec_is_refused_and_exits_2(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    endpoint = ["--master", f"127.0.0.1:{port}", "--world-size", "2"]
    agent = start_main(tmp_path / "agent.log", "--spec", "specs/fetch_reach.yaml", "--role",
                       "agent", "--run-dir", str(tmp_path / "run"), *endpoint, *QUIET,
                       "--set", "distributed.start_timeout_s=60")
    try:
        observer = run_main("--spec", "specs/fetch_push.yaml", "--role", "observer", "--rank",
                            "1", *endpoint, timeout=120)
        assert observer.returncode == 2, observer.stderr[-2000:]
        err = observer.stderr.strip()
        assert "Traceback" not in err and err.count("\n") == 0, err
        assert "observer1 refused by the agent" in err
        assert 'spec tasks: agent ["FetchReach-v4"], observer ["FetchPush-v4"]' in err
        assert agent.poll() is None  # the agent still waits for a fitting observer
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()


def test_fingerprint_is_json_serialisable() -> None:
    value = fingerprint(load_spec("specs/fetch_mt.yaml"))
    assert json.loads(json.dumps(value)) == value  # it travels through the store as JSON


AGENT_SENDING_AN_ORDER_THAT_FAILS = """
import asyncio, multiprocessing as mp, sys
import torch.distributed.rpc as rpc
from agent.run.transport import ObserverFailed, RpcTransport
from common import rpc_group
from common.fingerprint import fingerprint
from common.messages import Order
from common.rpc_group import free_port
from common.spec import load_spec
from observer.worker import run_observer, stop_serving

spec = load_spec("specs/fetch_reach.yaml")
port = free_port("127.0.0.1")
rpc_group.start_group("127.0.0.1", port, 60, "uv", fingerprint(spec))
observer = mp.get_context("spawn").Process(
    target=run_observer, args=(spec.model_dump(mode="json"), 1, "127.0.0.1", port))
observer.start()
rpc_group.wait_for_members(["observer1"], 60, lambda: not observer.is_alive())

async def order(tasks):
    return await RpcTransport(60).submit("observer1", Order(1, tasks, True, 0))

try:  # a task the observer's spec does not have: its collection raises
    asyncio.run(order([("FetchPush-v4", 1)]))
except ObserverFailed as exc:
    print("failed:", exc)
print("episodes:", asyncio.run(order([("FetchReach-v4", 1)])).batches[0].num_episodes)
rpc_group.stop_members(stop_serving, 30)
observer.join(60)
rpc.shutdown(graceful=False)
"""


@pytest.mark.slow
def test_an_exception_inside_a_real_observers_collection_arrives_as_its_failure() -> None:
    result = subprocess.run([sys.executable, "-c", AGENT_SENDING_AN_ORDER_THAT_FAILS],
                            cwd=REPO, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("failed: observer1's collection failed: ")
    assert "FetchPush-v4" in lines[0]
    assert lines[1] == "episodes: 1"  # the observer serves the next order as before
