"""What happens after a token is verified, with krakend-jose's rules (``jose.go``).

Roles are any-of; scopes are any-of or all-of; both read a list of strings or a
space-separated string, and may name a nested claim with a dot path. Claims copied into headers
or url_pattern parameters are printed as Go prints the float64/interface{} values it decoded:
integral numbers without decimals, others with ``%f``, lists comma-joined, objects as JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tidegate.golang.json_values import encode as go_json
from tidegate.golang.sprint import sprint_float64

Claims = Mapping[str, Any]
Matcher = Callable[[Claims], bool]
_EPSILON = 1e-6


def _nested(key: str, claims: Claims) -> tuple[str, Claims | None]:
    """``a.b.c`` → (``c``, the object at ``a.b``), or (key, None) when the path is missing
    (krakend-jose's getNestedClaim)."""
    parts = key.split(".")
    tmp: Any = claims
    for part in parts[:-1]:
        tmp = tmp.get(part) if isinstance(tmp, Mapping) else None
        if not isinstance(tmp, Mapping):
            return key, None
    return parts[-1], tmp


def _values(v: Any) -> list[str] | None:
    """A claim as the list of strings it holds (array of strings or space-separated string)."""
    if isinstance(v, list):
        # Go panics (500) on a non-string element; a non-string simply matches nothing here.
        return [e for e in v if isinstance(e, str)]
    if isinstance(v, str):
        return v.split(" ")
    return None


def roles_matcher(key: str, nested: bool, required: Sequence[str]) -> Matcher:
    """CanAccess / CanAccessNested: any required role present in the claim."""
    if not required:
        return lambda claims: True
    wanted = frozenset(required)
    use_path = nested and "." in key and not key.startswith("http")

    def match(claims: Claims) -> bool:
        if use_path:
            name, holder = _nested(key, claims)
            if holder is None:
                return False
            given = holder.get(name)
        else:
            given = claims.get(key)
        if isinstance(given, list):
            try:  # no string equals a non-string: only unhashable elements need filtering
                return not wanted.isdisjoint(given)
            except TypeError:
                return not wanted.isdisjoint([e for e in given if isinstance(e, str)])
        if isinstance(given, str):
            return not wanted.isdisjoint(given.split(" "))
        return False

    return match


def scopes_matcher(key: str, mode: str, required: Sequence[str]) -> Matcher:
    """ScopesAnyMatcher / ScopesAllMatcher; no check unless both scopes and scopes_key are set."""
    if not required or not key:
        return lambda claims: True
    wanted = frozenset(required)

    def match(claims: Claims) -> bool:
        name, holder = _nested(key, claims) if "." in key else (key, claims)
        if holder is None or name not in holder:
            return False
        value = holder[name]
        if isinstance(value, list) and not value:
            return False  # Go falls through to the string case, which an empty list is not
        given = _values(value)
        if given is None:
            return False
        return wanted.issubset(given) if mode == "all" else not wanted.isdisjoint(given)

    return match


def claim_text(v: Any) -> str:
    """krakend-jose ``Claims.Get``: one claim as a header or parameter value."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or v is None or isinstance(v, Mapping):
        return go_json(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = round(v)
        return str(int(r)) if abs(v - r) <= _EPSILON else f"{v:f}"
    if isinstance(v, list):
        return ",".join(sprint_float64(e) for e in v)
    return go_json(v)


def claim_list(v: Any) -> list[str]:
    """krakend-jose ``Claims.List`` (``propagate_claims_preserve_array``)."""
    if isinstance(v, list):
        return [sprint_float64(e) for e in v]
    return [claim_text(v)]


def _source(claim: str, claims: Claims) -> tuple[str, Claims | None]:
    if "." in claim and not claim.startswith("http"):
        return _nested(claim, claims)
    return claim, claims


def propagated_headers(pairs: Sequence[tuple[str, str]], preserve_array: bool, claims: Claims
                       ) -> list[tuple[str, list[str]]]:
    """(header, values) for ``propagate_claims``; a missing claim gives an empty value, as in
    KrakenD (the header is still set, replacing what the client sent)."""
    out = []
    for claim, header in pairs:
        name, holder = _source(claim, claims)
        present = holder is not None and name in holder
        if preserve_array:
            out.append((header, claim_list(holder[name]) if present and holder else [""]))
        else:
            out.append((header, [claim_text(holder[name]) if present and holder else ""]))
    return out


def claim_params(names: Sequence[str], claims: Claims) -> dict[str, str]:
    """``{JWT.<claim>}`` url_pattern parameters (top-level claims only, as KrakenD)."""
    return {"JWT." + n: claim_text(claims[n]) for n in names if n in claims}
