"""The catalog's declarations match the components they load, and loading is lazy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import checkout_env
from tidegate.components.catalog import DECLARED, Declared


@pytest.mark.parametrize("declared", DECLARED, ids=lambda d: f"{d.namespace}@{d.order}")
def test_declaration_matches_the_module_component(declared: Declared) -> None:
    real = declared.load()
    assert (real.namespace, real.levels, real.order, real.service_wide, real.bounded) == (
        declared.namespace, declared.levels, declared.order, declared.service_wide,
        declared.bounded)


def test_a_worker_without_those_sections_never_imports_the_heavy_libraries() -> None:
    """The demo configuration compiles without cel-python, lupa, joserfc, jsonschema, RE2."""
    probe = (
        "import sys\n"
        "from tidegate.config.loader import load_config\n"
        "from tidegate.pipeline.generation import Generation, ServerStatus\n"
        "from tidegate.server import worker\n"
        "loaded = load_config(None, {})\n"
        "Generation(loaded.service, 1, 'h', debug=False, status=ServerStatus())\n"
        "heavy = {'celpy', 'lupa', 'joserfc', 'jsonschema', 're2', 'cryptography',\n"
        "         'opentelemetry', 'grpc', 'google'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=checkout_env(), timeout=60, check=True).stdout
    assert out.strip() == "[]"
