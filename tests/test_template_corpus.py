"""The shared Go template corpus through `tidegate render`, exactly as the issue runs it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.support import SHARED, checkout_env

pytestmark = pytest.mark.slow

RUNNER = SHARED / "gotmpl" / "run_corpus.py"


@pytest.mark.skipif(not RUNNER.exists(), reason="../shared/gotmpl is not beside the repo")
def test_public_corpus_renders_like_go(tmp_path) -> None:
    engine = f"{shlex.quote(sys.executable)} -m tidegate render"
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--engine-cmd", engine, "--skip-tag",
         "differs-from-krakend", "--skip-tag", "network", "-q", "-j", "2"],
        capture_output=True, text=True, timeout=900, cwd=str(tmp_path), env=checkout_env())
    summary = re.search(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert summary, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert int(summary.group(2)) == 0, proc.stdout[-6000:]
    assert int(summary.group(1)) > 500
