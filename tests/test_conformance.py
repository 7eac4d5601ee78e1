"""KrakenD CE's own integration specs, run by the shared harness against `tidegate run`.

The list below is what passes today; a spec that starts failing fails this test, and a spec that
starts passing is reported so the list can grow.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import SHARED, free_port

pytestmark = pytest.mark.slow

HARNESS = SHARED / "conformance" / "run_conformance.py"

EXPECTED_PASS = sorted("""
backend_301 backend_302 backend_303 backend_307 backend_404 collection detail_error flatmap_1
integration_jsonschema integration_no_body integration_schema negotitate_json negotitate_plain
no-op_1 no-op_2 param_forwarding_1 param_forwarding_2 param_forwarding_3 param_forwarding_4
query_forwarding_1 query_forwarding_2 query_forwarding_3 router_404 router_405 router_redirect
sequential_1 sequential_2 static timeout xml_1 xml_2
""".split())


def run_harness(tmp_path: Path, *extra: str) -> dict[str, str]:
    """Run the harness once; return spec name → pass/fail/skip."""
    out = tmp_path / "results.json"
    gateway_cmd = (f"{shlex.quote(sys.executable)} -m tidegate run -d -c {{config}} "
                   f"-p {{port}} --workers 1")
    cmd = [sys.executable, str(HARNESS), "--keep-going", "--json-out", str(out),
           "--gateway-port", str(free_port()), "--backend-port", str(free_port()),
           "--log-dir", str(tmp_path / "logs"), "--gateway-cmd", gateway_cmd, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          cwd=str(HARNESS.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    return {r["name"]: r["status"] for r in results}, proc.stdout


@pytest.mark.skipif(not HARNESS.exists(), reason="../shared/conformance is not beside the repo")
def test_krakend_ce_specs(tmp_path: Path) -> None:
    statuses, stdout = run_harness(tmp_path)
    failing = [name for name in EXPECTED_PASS if statuses.get(name) != "pass"]
    lines = {line.split(":")[0].split(" ", 1)[1]: line for line in stdout.splitlines()
             if line.startswith(("PASS ", "FAIL ", "SKIP "))}
    assert not failing, "\n".join(lines.get(n, n) for n in failing)
    newly = sorted(n for n, s in statuses.items() if s == "pass" and n not in EXPECTED_PASS)
    print(f"passing beyond the expected list: {newly}")
