"""`audit --format`: KrakenD's inline Go template over the audit result.

KrakenD renders ``{{ range .Recommendations }}{{.Rule}}\\t[{{.Severity}}]   \\t{{.Message}}\\n
{{ end }}`` by default and accepts any template with two extra functions: ``marshal`` (the result
as JSON, e.g. ``--format '{{ marshal . }}'``) and ``colored`` (a severity with terminal colours).
The result is exposed as krakend-audit's Go structs, so field names are KrakenD's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tidegate.golang.types import GoObject
from tidegate.gotemplate.exec import ExecError
from tidegate.gotemplate.funcdef import ANY, STRING, GoFunc
from tidegate.gotemplate.funcs_builtin import BUILTINS
from tidegate.gotemplate.parse import ParseError
from tidegate.gotemplate.template import TemplateSet
from tidegate.lint.audit import Finding

KRAKEND_DEFAULT = ("{{ range .Recommendations }}{{.Rule}}\t[{{.Severity}}]   \t{{.Message}}\n"
                   "{{ end }}")
_COLOURS = {"LOW": "32;1", "MEDIUM": "33;1", "HIGH": "31;1", "CRITICAL": "41;1"}


class Recommendation(GoObject):
    """krakend-audit's Recommendation (json: rule, severity, message)."""

    go_type = "audit.Recommendation"
    go_fields = ("Rule", "Severity", "Message")

    def __init__(self, finding: Finding) -> None:
        self.f_Rule = finding.rule
        self.f_Severity = finding.severity
        self.f_Message = finding.message

    def go_json(self) -> dict[str, Any]:
        return {"rule": self.f_Rule, "severity": self.f_Severity, "message": self.f_Message}


class Stats(GoObject):
    go_type = "audit.Stats"

    def go_json(self) -> dict[str, Any]:
        return {}


class AuditResult(GoObject):
    """krakend-audit's AuditResult (json: recommendations, stats)."""

    go_type = "audit.AuditResult"
    go_fields = ("Recommendations", "Stats")

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.f_Recommendations = [Recommendation(f) for f in findings]
        self.f_Stats = Stats()

    def go_json(self) -> dict[str, Any]:
        return {"recommendations": [r.go_json() for r in self.f_Recommendations],
                "stats": {}}


def _to_json(value: Any) -> Any:
    if isinstance(value, GoObject) and hasattr(value, "go_json"):
        return value.go_json()
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def _marshal(value: Any) -> str:
    """Go's json.Marshal of the value (compact; nil slices are null)."""
    return json.dumps(_to_json(value), separators=(",", ":"), ensure_ascii=False)


def _colored(severity: Any) -> str:
    code = _COLOURS.get(severity) if isinstance(severity, str) else None
    return f"\033[{code}m{severity}\033[0m" if code else str(severity)


class AuditFormatError(Exception):
    """The template does not parse or does not run (KrakenD: ERROR parsing the template)."""


def render(template: str, findings: Iterable[Finding]) -> str:
    """The findings rendered through a KrakenD audit template."""
    funcs = dict(BUILTINS)
    funcs["marshal"] = GoFunc("marshal", _marshal, (ANY,), returns="string")
    funcs["colored"] = GoFunc("colored", _colored, (STRING,), returns="string")
    tset = TemplateSet(funcs)
    try:
        tset.parse("audit", template)
    except ParseError as exc:
        raise AuditFormatError(f"ERROR parsing the template: {exc.message}") from None
    try:
        return tset.execute("audit", AuditResult(findings))
    except ExecError as exc:
        raise AuditFormatError(f"ERROR rendering the results: {exc.message}") from None
