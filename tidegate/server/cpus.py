"""How many CPUs this process may really use: the default worker count.

`os.cpu_count()` counts the machine. A process pinned with `taskset`, or a container given
`--cpus 1.5`, gets less: the affinity mask and the cgroup CPU quota (v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`) both bound it, and a quota is rounded up (1.5 CPUs
still keep two workers busy).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """min(affinity, cgroup quota), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root, proc_cgroup)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
                     ) -> float | None:
    """The tightest CPU quota over this process's cgroup and its parents, in CPUs (None: none)."""
    limits = []
    for folder in _cgroup_folders(root, proc_cgroup):
        for limit in (_v2_limit(folder), _v1_limit(folder)):
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _cgroup_folders(root: Path, proc_cgroup: Path) -> list[Path]:
    """The process's cgroup folders (v2 unified, v1 cpu controller) and their parents."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [root, root / "cpu", root / "cpu,cpuacct"]
    folders = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            base = root
        elif "cpu" in controllers.split(","):
            base = root / controllers
            if not base.is_dir():
                base = root / "cpu"
        else:
            continue
        rel = Path(path.lstrip("/"))
        # Inside a container the cgroup namespace makes `path` "/" (its own root); outside,
        # the path may not be mounted as-is: walk up from what exists.
        for parent in [rel, *rel.parents]:
            folders.append(base / parent)
    return folders


def _v2_limit(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _v1_limit(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period
