"""The compiled build (mypyc, what `pip install .` installs) behaves as the pure-Python one.

Development and the rest of this suite run the pure-Python modules (editable installs do not
compile). This test copies the checkout, builds the modules `setup.py` lists as C extensions
in the copy, checks that they are the ones imported, and runs there the tests of everything a
request goes through: wire, pipeline, upstream client, streaming, edge limits and KrakenD CE's
conformance specs. mypyc checks types at run time where Python does not, so a path that only
the compiled build breaks fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SHARED

pytestmark = pytest.mark.slow

# The tests that drive the compiled modules; conformance runs whole gateways on them.
SUBSET = [
    "tests/test_pipeline_semantics.py",
    "tests/test_pipeline_failures.py",
    "tests/test_merge_fanout.py",
    "tests/test_pipeline_components.py",
    "tests/test_manipulation.py",
    "tests/test_router.py",
    "tests/test_encoding.py",
    "tests/test_protocol_pipelining.py",
    # the protocol's serving task and the version read from a chunk's first line
    "tests/test_protocol_version.py",
    "tests/test_protocol_serving_task.py",
    "tests/test_gateway_functional.py",
    "tests/test_streaming.py",
    "tests/test_edge_limits.py",
    "tests/test_client_ip.py",
    "tests/test_access_log.py",
    "tests/test_logging.py",
    "tests/test_logging_gelf.py",
    "tests/test_conformance.py",
    # a cache hit's remembered rendering and the endpoint timeout scope (backend, endpoint)
    "tests/test_httpcache.py",
    "tests/test_breaker.py",
    # the compiled components of the usual stack
    "tests/test_jwt_validator.py",
    "tests/test_jwt_cache.py",
    "tests/test_jwt_claims.py",
    "tests/test_cors.py",
    "tests/test_cors_rules.py",
    "tests/test_ratelimit.py",
    "tests/test_secure_headers.py",
    "tests/test_secure_headers_endpoint.py",
    # the order of an answer's head with CORS and security/http lines (components/answer_lines)
    "tests/test_answer_lines.py",
    "tests/test_security_rules.py",
    "tests/test_jsonschema_body.py",
    "tests/test_jsonschema_onepass.py",
    "tests/test_jsonschema_learned.py",
    # the metrics recorder's stages and tables (compiled since they run on every request)
    "tests/test_metrics_client.py",
    "tests/test_metrics_e2e.py",
    "tests/test_metrics_layers.py",
    # a metrics-only backend stage reported inline by the compiled backend (its tap)
    "tests/test_backend_tap.py",
    # the traces' stages and span encoding (compiled: a sampled request encodes its spans)
    "tests/test_tracing.py",
    "tests/test_tracing_state.py",
]


def compiled_modules() -> list[str]:
    """The modules setup.py compiles, as dotted names."""
    listed = re.findall(r'"(tidegate/[\w/]+)\.py"', (ROOT / "setup.py").read_text())
    return [name.replace("/", ".") for name in listed]


def test_compiled_build_passes_the_request_path_tests(tmp_path: Path) -> None:
    if shutil.which("gcc") is None and not os.environ.get("TIDEGATE_REQUIRE_COMPILER"):
        pytest.skip("no C compiler: the package installs as pure Python")
    tree = tmp_path / "tidegate"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"))
    if SHARED.exists():
        (tmp_path / "shared").symlink_to(SHARED)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace",
         "--build-temp", str(tmp_path / "objects")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    modules = compiled_modules()
    probe = ("import importlib, sys\n"
             "for name in sys.argv[1:]:\n"
             "    print(name, importlib.import_module(name).__file__)\n")
    where = subprocess.run([sys.executable, "-c", probe, *modules], cwd=tree, env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    not_compiled = [line for line in where.splitlines() if not line.endswith(".so")]
    assert len(where.splitlines()) == len(modules) and not not_compiled, where

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *SUBSET],
        cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout.splitlines()[-1]
