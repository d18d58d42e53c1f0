"""Multi-host for real: agent and observers in separate network namespaces on one bridge."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LIGHT, QUIET, REPO, main_env, read_metrics, run_main
from tests.test_run import wait_for_record

pytestmark = pytest.mark.slow

SUBNET = "10.231.{}.{}"


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True)


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """Three namespaces (agent, obs1, obs2) on one bridge; yields name -> IPv4 address."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (reason: not running as root)")
    tag = f"{os.getpid() % 10000}"
    names = {role: f"fmt{tag}{role[0]}{i}" for i, role in enumerate(("agent", "obs1", "obs2"))}
    subnet = os.getpid() % 200 + 20
    try:
        ip("netns", "add", names["agent"])
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        reason = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        print(f"skipping multi-host test: cannot make network namespaces ({reason})")
        pytest.skip(f"cannot make network namespaces: {reason}")
    addresses = {}
    try:
        agent = names["agent"]
        ip("-n", agent, "link", "set", "lo", "up")
        ip("-n", agent, "link", "add", "br0", "type", "bridge")
        ip("-n", agent, "addr", "add", f"{SUBNET.format(subnet, 1)}/24", "dev", "br0")
        ip("-n", agent, "link", "set", "br0", "up")
        addresses["agent"] = SUBNET.format(subnet, 1)
        for host_index, role in enumerate(("obs1", "obs2"), start=2):
            ns = names[role]
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            outside, inside = f"v{tag}{host_index}a", f"v{tag}{host_index}b"
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", outside, "netns", agent)
            ip("link", "set", inside, "netns", ns)
            ip("-n", agent, "link", "set", outside, "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{SUBNET.format(subnet, host_index)}/24", "dev", inside)
            ip("-n", ns, "link", "set", inside, "up")
            addresses[role] = SUBNET.format(subnet, host_index)
        yield {role: f"{names[role]}|{addr}" for role, addr in addresses.items()}
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def free_port(host: str) -> int:
    """A port the OS picks inside ``host``'s namespace (nothing else runs there to take it)."""
    code = "import socket; s = socket.socket(); s.bind(('', 0)); print(s.getsockname()[1])"
    out = subprocess.run(["ip", "netns", "exec", host.split("|")[0], sys.executable, "-c", code],
                         capture_output=True, text=True, check=True, timeout=60)
    return int(out.stdout)


def in_netns(host: str, *args: str, log: Path) -> subprocess.Popen:
    ns = host.split("|")[0]
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "main.py", *args], cwd=REPO, env=main_env(),
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )


def start_job(
    hosts: dict[str, str], tmp_path: Path, *settings: str
) -> tuple[list[str], Path, list[subprocess.Popen]]:
    """The agent in its namespace, observers 1 and 2 in theirs (logs in ``tmp_path``).

    Returns the arguments they share, the run directory and [agent, observer1, observer2].
    """
    master = f"{hosts['agent'].split('|')[1]}:{free_port(hosts['agent'])}"
    common = ["--spec", "specs/fetch_reach.yaml", "--master", master, "--world-size", "3",
              *LIGHT, *settings, *QUIET]
    run_dir = tmp_path / "run"
    agent = in_netns(hosts["agent"], *common, "--role", "agent", "--run-dir", str(run_dir),
                     log=tmp_path / "agent.log")
    observers = [
        in_netns(hosts[role], *common, "--role", "observer", "--rank", str(rank),
                 log=tmp_path / f"{role}.log")
        for rank, role in ((1, "obs1"), (2, "obs2"))
    ]
    return common, run_dir, [agent, *observers]


def test_agent_and_observers_on_three_hosts(hosts: dict[str, str], tmp_path: Path) -> None:
    _, run_dir, (agent, *observers) = start_job(
        hosts, tmp_path, "--set", "budget.env_steps=1200",
        "--set", "eval.every_env_steps=600", "--set", "learner.start_after_env_steps=200")
    try:
        assert agent.wait(timeout=240) == 0, (tmp_path / "agent.log").read_text()[-3000:]
        for observer, role in zip(observers, ("obs1", "obs2"), strict=True):
            assert observer.wait(timeout=60) == 0, (tmp_path / f"{role}.log").read_text()[-2000:]
    finally:
        for process in (agent, *observers):
            if process.poll() is None:
                process.kill()
    records = read_metrics(run_dir)
    end = records[-1]
    assert end["event"] == "end" and end["env_steps"] == 1200
    assert set(end["episodes_by_observer"]) == {"observer1", "observer2"}
    assert all(n > 0 for n in end["episodes_by_observer"].values())
    assert [r["env_steps"] for r in records if r["event"] == "eval"][-1] == 1200


def test_replacement_observer_rejoins_under_the_lost_rank(
    hosts: dict[str, str], tmp_path: Path
) -> None:
    """kill -9 of a remote observer; a new one started with the same rank (at once: it waits
    until the agent has dropped the old one) joins the run and collects; a duplicate of a
    rank still in the run is refused with status 2."""
    common, run_dir, processes = start_job(
        # measured on an idle box: lost at 1,100-2,100 env steps, rejoined at 2,800; the budget
        # keeps the run (about 1,100 env steps/s) alive past the duplicate's 3-s wait
        hosts, tmp_path, "--set", "budget.env_steps=20000",
        "--set", "eval.every_env_steps=2000", "--set", "distributed.rpc_timeout_s=10")
    agent = processes[0]
    try:
        wait_for_record(run_dir, "train")
        duplicate = in_netns(hosts["obs1"], *common, "--role", "observer", "--rank", "2",
                             "--set", "distributed.start_timeout_s=3",
                             log=tmp_path / "duplicate.log")
        processes.append(duplicate)
        processes[1].kill()  # meanwhile: rank 1 is lost, and replaced
        wait_for_record(run_dir, "observer_lost")
        processes.append(in_netns(hosts["obs1"], *common, "--role", "observer", "--rank", "1",
                                  log=tmp_path / "replacement.log"))
        assert duplicate.wait(timeout=120) == 2
        assert "still a member" in (tmp_path / "duplicate.log").read_text()
        assert agent.wait(timeout=300) == 0, (tmp_path / "agent.log").read_text()[-3000:]
        for process, log in ((processes[2], "obs2"), (processes[4], "replacement")):
            assert process.wait(timeout=60) == 0, (tmp_path / f"{log}.log").read_text()[-2000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    records = read_metrics(run_dir)
    end, lost = records[-1], next(r for r in records if r["event"] == "observer_lost")
    assert end["event"] == "end" and end["env_steps"] == 20000
    assert lost["observer"] == "observer1"
    assert (end["observers_lost"], end["observers_rejoined"]) == (1, 1)
    assert end["episodes_by_observer"]["observer1"] > lost["episodes"]


def test_agent_listens_only_on_the_address_it_is_given(hosts: dict[str, str]) -> None:
    """The rendezvous port is bound to the agent's address, not to every interface."""
    ns, addr = hosts["agent"].split("|")
    port = free_port(hosts["agent"])
    code = (
        "import socket, sys; from common.rpc_group import _bound_tcp_rendezvous; "
        f"s = next(_bound_tcp_rendezvous('boundtcp://{addr}:{port}?rank=0&world_size=1')); "
        "import subprocess; print(subprocess.run(['ss','-ltn'],capture_output=True,"
        "text=True).stdout)"
    )
    out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    listening = [line.split()[3] for line in out.stdout.splitlines() if f":{port}" in line]
    assert listening == [f"{addr}:{port}"], out.stdout + out.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--role", "agent"], "needs a fixed port"),
        (["--role", "agent", "--master", "127.0.0.1:x"], "expected HOST:PORT"),
        (["--role", "agent", "--master", "[::1]:29633", "--world-size", "2"], "IPv6"),
        (["--role", "agent", "--master", "0.0.0.0:29633", "--world-size", "2"], "wildcard"),
        (["--role", "agent", "--master", "127.0.0.1:29633"], "--world-size must be at least 2"),
        (["--role", "observer", "--master", "127.0.0.1:29633", "--world-size", "3"], "--rank"),
        (["--role", "observer", "--master", "127.0.0.1:29633", "--world-size", "3",
          "--rank", "3"], "--rank 3"),
    ],
)
def test_bad_role_arguments_exit_2(args: list[str], expected: str, tmp_path: Path) -> None:
    result = run_main("--spec", "specs/fetch_reach.yaml", "--run-dir", str(tmp_path / "r"),
                      *args, timeout=120) if args[1] == "agent" else run_main(
        "--spec", "specs/fetch_reach.yaml", *args, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()
