"""The typed packages stay mypy clean (strict; `[tool.mypy]` in pyproject.toml names them)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from tests.support import ROOT


def test_mypy_strict_clean() -> None:
    # mypy is in the `test` extra: the README's `pip install -e '.[test]'` brings it.
    assert importlib.util.find_spec("mypy") is not None, \
        "mypy is not installed: pip install -e '.[test]'"
    # A bare run reads the files to check from pyproject.toml, as `mypy` typed in the root does;
    # its cache (.mypy_cache in the root) keeps a run after a small change to about a second.
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert proc.stdout.startswith("Success: no issues found"), proc.stdout[-6000:]
