"""Suite-wide guard: never test a stale compiled module instead of the source beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tidegate"


def pytest_sessionstart(session: pytest.Session) -> None:
    """A module built in place by mypyc shadows its ``.py``: once the source is newer, the
    tests would run old code. Stop with the remedy instead."""
    stale = [so for so in PACKAGE.rglob("*.so")
             if (py := so.with_name(so.name.split(".", 1)[0] + ".py")).exists()
             and py.stat().st_mtime > so.stat().st_mtime]
    if stale:
        names = ", ".join(str(p.relative_to(PACKAGE.parent)) for p in stale[:5])
        pytest.exit(f"compiled modules older than their source: {names}; rebuild them "
                    "(python setup.py build_ext --inplace) or delete them "
                    "(find tidegate -name '*.so' -delete)", returncode=4)
