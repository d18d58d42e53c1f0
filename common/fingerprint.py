"""What an observer must share with its agent: the code and the spec keys that shape what
it collects. The agent publishes its fingerprint in the run's store; an observer compares
its own before joining and is refused, naming what differs, if they do not match."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from common.spec import Spec

PACKAGES = ("agent", "common", "meta", "observer")
"""The project's packages, whose sources make up the code version."""


@cache
def code_version() -> str:
    """A hash of every Python source of the project's packages (the same on every host that
    runs the same commit, whether from a clone, an install or the Docker image)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def fingerprint(spec: Spec) -> dict[str, str]:
    """The code version and, as JSON, the spec keys an observer's collection depends on:
    the tasks, how it steps and explores, and the policy network it runs."""
    network = {"algo": spec.learner.algo, "hidden_sizes": spec.learner.hidden_sizes,
               "model": spec.model.model_dump(mode="json"),
               "normalizer": spec.normalizer.model_dump(mode="json")}
    parts = {"tasks": spec.tasks, "collect": spec.collect.model_dump(mode="json"),
             "network": network}
    return {"code": code_version(), **{key: json.dumps(value, sort_keys=True)
                                       for key, value in parts.items()}}


def differences(agent: dict[str, str], observer: dict[str, str]) -> list[str]:
    """What differs between the agent's and an observer's fingerprint, one phrase each."""
    out = []
    for key in sorted(set(agent) | set(observer)):
        mine, theirs = observer.get(key), agent.get(key)
        if mine != theirs:
            what = "code version" if key == "code" else f"spec {key}"
            out.append(f"{what}: agent {theirs}, observer {mine}")
    return out
