"""The code base stays ruff clean (same rules as the README's tooling)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.mark.skipif(shutil.which("ruff") is None and sys.prefix == sys.base_prefix,
                    reason="ruff is not installed")
def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or "ruff"
    proc = subprocess.run([ruff, "check", "tidegate", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]
