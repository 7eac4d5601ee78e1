"""Runs the gotmpl conformance corpus in-process (fast feedback with pytest's diffs).

The corpus (expected outputs produced by Go's text/template + Sprig) is not vendored: it is
read from ``../shared/gotmpl/public`` beside the repository, or from ``GOTMPL_CORPUS``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tidegate.gotemplate.loader import RenderError, render

CORPUS = os.environ.get("GOTMPL_CORPUS") or str(
    Path(__file__).resolve().parents[3] / "shared" / "gotmpl" / "public")
SKIP_TAGS = {"differs-from-krakend", "network"}
UNSUPPORTED: set[str] = set()


def _records() -> list[dict[str, Any]]:
    if not CORPUS or not os.path.isdir(CORPUS):
        return []
    out = []
    for f in sorted(Path(CORPUS).glob("*.json")):
        for rec in json.loads(f.read_text(encoding="utf-8")):
            if SKIP_TAGS & set(rec.get("tags", [])) or rec["id"] in UNSUPPORTED:
                continue
            out.append(rec)
    return out


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if isinstance(text, str) else json.dumps(text), encoding="utf-8")


@pytest.mark.skipif(not CORPUS, reason="GOTMPL_CORPUS not set")
@pytest.mark.parametrize("rec", _records(), ids=lambda r: r["id"])
def test_corpus_case(rec: dict[str, Any], tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TZ", "UTC")
    for k, v in (rec.get("env") or {}).items():
        monkeypatch.setenv(k, v)
    name = rec.get("template_name", "krakend.tmpl")
    _write(tmp_path / name, rec["template"])
    kwargs: dict[str, Any] = {}
    if "data_json" in rec or "data" in rec:
        text = rec["data_json"] if "data_json" in rec else json.dumps(rec["data"],
                                                                    ensure_ascii=False)
        _write(tmp_path / "data.json", text)
        kwargs["data_file"] = "data.json"
    for kind in ("settings", "partials", "templates"):
        files = rec.get(kind)
        if files is None and kind + "_dir" not in rec:
            continue
        (tmp_path / kind).mkdir(exist_ok=True)
        for fname, content in (files or {}).items():
            _write(tmp_path / kind / fname, content)
        kwargs[kind] = rec.get(kind + "_dir", kind)
    try:
        got = render(name, **kwargs).text
    except RenderError as e:
        assert "expected_error_kind" in rec, f"unexpected {e.kind} error: {e.message}"
        assert (e.kind, e.message) == (rec["expected_error_kind"], rec["expected_error_text"])
        return
    assert "expected_error_kind" not in rec, f"expected an error, got {got!r}"
    if "expected_output_b64" in rec:
        assert got.encode("utf-8", "surrogateescape") == \
            base64.b64decode(rec["expected_output_b64"])
    else:
        assert got == rec["expected_output"]
