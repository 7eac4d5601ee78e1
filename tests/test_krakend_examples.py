"""KrakenD's own flexible-config examples (the gotmpl corpus' krakend-examples area) render to
the same bytes as KrakenD's engine, pass `tidegate check -tl`, and compile into a generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import SHARED, free_port
from tidegate.cli import main
from tidegate.config.flexible import render_flexible_config
from tidegate.config.loader import load_config
from tidegate.lint.failclosed import find_unprotected
from tidegate.reload.builder import build_candidate

CORPUS = SHARED / "gotmpl" / "public" / "krakend-examples.json"


def _records() -> list[dict[str, Any]]:
    if not CORPUS.exists():
        return []
    out = []
    for rec in json.loads(CORPUS.read_text()):
        try:
            rendered = json.loads(rec.get("expected_output", ""))
        except ValueError:
            continue
        if isinstance(rendered, dict) and rendered.get("version") == 3:
            out.append(rec)
    return out


def materialize(rec: dict[str, Any], root: Path) -> tuple[Path, dict[str, str]]:
    """Write the example's tree as the corpus runner does; return (template, FC_* env)."""
    template = root / rec.get("template_name", "krakend.tmpl")
    template.write_text(rec["template"])
    env = {"FC_ENABLE": "1", **rec.get("env", {})}
    for kind, var in (("settings", "FC_SETTINGS"), ("partials", "FC_PARTIALS"),
                      ("templates", "FC_TEMPLATES")):
        files = rec.get(kind)
        if files is None:
            continue
        folder = root / rec.get(f"{kind}_dir", kind)
        for name, text in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        folder.mkdir(exist_ok=True)
        env[var] = str(folder)
    return template, env


RECORDS = _records()
# Examples KrakenD's v2.13 schema refuses, and the words of the one refusal `check -l` gives.
SCHEMA_REFUSES = {
    name: '["telemetry/logging"].custom_format: unknown attribute `custom_format`'
    for name in ("ai-gateway-llm-with-keys", "ai-gateway-llm-with-empty-env-file-values")}


@pytest.mark.skipif(not RECORDS, reason="../shared/gotmpl is not beside the repo")
@pytest.mark.parametrize("rec", RECORDS, ids=[r["id"].split("/")[1] for r in RECORDS])
def test_example_renders_checks_and_compiles(rec: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    template, env = materialize(rec, tmp_path)
    assert render_flexible_config(str(template), env).text == rec["expected_output"]
    # Protections tidegate does not implement yet are refused (fail closed) unless opted out.
    unprotected = sorted({u.name for u in find_unprotected(load_config(str(template), env).data)})
    allow = frozenset(unprotected)
    candidate = build_candidate(str(template), env, port=None, debug=False,
                                allow_unimplemented=allow)
    assert candidate.loaded.service.endpoints
    assert candidate.unprotected == tuple(unprotected)
    for key, value in {**env, "KRAKEND_PORT": str(free_port()),
                       "KRAKEND_LISTEN_IP": "127.0.0.1"}.items():
        monkeypatch.setenv(key, value)
    if unprotected:
        assert main(["check", "-tl", "-c", str(template)]) == 1
        schema_says = SCHEMA_REFUSES.get(rec["id"].split("/")[1], "\0")
        refused = [line for line in capsys.readouterr().err.splitlines()
                   if "ERROR" in line and schema_says not in line]
        assert refused and all("requests would be served without it" in line
                               for line in refused), refused
    flags = [arg for name in unprotected for arg in ("--allow-unimplemented", name)]
    short_id = rec["id"].split("/")[1]
    if short_id in SCHEMA_REFUSES:
        # KrakenD's own v2.13 schema refuses these (a backend's telemetry/logging holds only
        # `backend`), so `check -l` does; KrakenD and `check` run them.
        assert main(["check", "-tl", "-c", str(template), *flags]) == 1
        lint_errors = [line for line in capsys.readouterr().err.splitlines() if "ERROR" in line]
        assert lint_errors and all(SCHEMA_REFUSES[short_id] in line for line in lint_errors)
        assert main(["check", "-t", "-c", str(template), *flags]) == 0, capsys.readouterr().err
    else:
        assert main(["check", "-tl", "-c", str(template), *flags]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "ERROR" not in err
