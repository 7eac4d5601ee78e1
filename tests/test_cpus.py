"""The default worker count: CPUs this process may run on, bounded by the cgroup quota.

The cgroup files are written to a temporary folder laid out as /sys/fs/cgroup is.
"""

from __future__ import annotations

import os
from pathlib import Path

from tidegate.server.cpus import available_cpus, cgroup_cpu_limit

AFFINITY = len(os.sched_getaffinity(0))


def cgroup(tmp_path: Path, proc: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "proc-cgroup").write_text(proc)
    return root, tmp_path / "proc-cgroup"


def test_v2_quota_in_a_container(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "0::/\n", {"cpu.max": "50000 100000\n"})
    assert cgroup_cpu_limit(root, proc) == 0.5
    assert available_cpus(root, proc) == 1


def test_v2_quota_is_rounded_up_and_bounded_by_affinity(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"})
    assert available_cpus(root, proc) == min(AFFINITY, 2)


def test_v2_no_quota(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(root, proc) == AFFINITY


def test_v2_parent_quota_counts(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "0::/app/web\n", {"app/cpu.max": "100000 100000\n",
                                                    "app/web/cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_v1_cfs_quota(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "4:cpu,cpuacct:/\n3:memory:/\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "100000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_limit(root, proc) == 1.0
    assert available_cpus(root, proc) == 1


def test_v1_unlimited(tmp_path: Path) -> None:
    root, proc = cgroup(tmp_path, "4:cpu,cpuacct:/\n", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_limit(root, proc) is None
