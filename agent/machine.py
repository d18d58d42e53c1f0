"""What this machine can hold: refuse a local run whose observers would not fit in memory."""

from __future__ import annotations

import os

from common.spec import Spec, SpecError

OBSERVER_BASE_BYTES = 384 << 20
"""Resident memory of one observer process before its envs (Python, torch, mujoco)."""
OBSERVER_ENV_BYTES = 16 << 20
"""Resident memory of one Fetch env in an observer. Both measured: 490 MB for 3 tasks x 2 envs."""


def available_memory_bytes() -> int:
    """Memory the kernel can give new processes (MemAvailable), free pages if it is unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def observer_memory_bytes(spec: Spec) -> int:
    """Estimated resident memory of one observer of ``spec``."""
    envs = len(spec.tasks) * spec.collect.envs_per_observer
    return OBSERVER_BASE_BYTES + OBSERVER_ENV_BYTES * envs


def check_local_observers_fit(spec: Spec, available: int | None = None) -> None:
    """SpecError naming ``observers`` if this machine cannot hold a local run's observers."""
    available = available_memory_bytes() if available is None else available
    need = observer_memory_bytes(spec)
    if spec.observers * need > available:
        raise SpecError(
            f"observers: {spec.observers} local observers need about "
            f"{spec.observers * need / 2**30:.1f} GiB ({need / 2**20:.0f} MiB each), this machine "
            f"has {available / 2**30:.1f} GiB available; at most {available // need} fit "
            "(observers on other hosts: --role agent / --role observer)"
        )
