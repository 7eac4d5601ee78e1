"""Sprig semver / semverCompare (Masterminds/semver v3 rules, common constraint forms)."""

from __future__ import annotations

import re
from typing import Any

from tidegate.golang.types import GoObject

from ..funcdef import STRING, GoError, GoFunc, fn

FUNCS: dict[str, GoFunc] = {}

_VER_RE = re.compile(r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
                     r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
                     r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?$")


class SemVer(GoObject):
    """*semver.Version."""

    go_type = "*semver.Version"
    go_kind = "ptr"
    go_methods = frozenset({"Major", "Minor", "Patch", "Prerelease", "Metadata", "Original",
                            "String"})

    def __init__(self, major: int, minor: int, patch: int, pre: str, meta: str,
                 original: str) -> None:
        self.major, self.minor, self.patch = major, minor, patch
        self.pre, self.meta, self.original = pre, meta, original

    def go_string(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            s += "-" + self.pre
        if self.meta:
            s += "+" + self.meta
        return s

    def to_json_value(self) -> str:
        return self.go_string()

    def go_equal(self, other: Any) -> bool:
        return self is other

    def m_Major(self) -> int:
        return self.major

    def m_Minor(self) -> int:
        return self.minor

    def m_Patch(self) -> int:
        return self.patch

    def m_Prerelease(self) -> str:
        return self.pre

    def m_Metadata(self) -> str:
        return self.meta

    def m_Original(self) -> str:
        return self.original

    def m_String(self) -> str:
        return self.go_string()


def new_version(v: str) -> SemVer:
    m = _VER_RE.match(v)
    if m is None:
        raise GoError("Invalid Semantic Version")
    pre = m.group(5) or ""
    if pre:
        for part in pre.split("."):
            if part.isdigit() and len(part) > 1 and part[0] == "0":
                raise GoError("Version segment starts with 0")
    return SemVer(int(m.group(1)), int((m.group(2) or ".0")[1:]), int((m.group(3) or ".0")[1:]),
                  pre, m.group(8) or "", v)


def _cmp_pre(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    pa, pb = a.split("."), b.split(".")
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        xd, yd = x.isdigit(), y.isdigit()
        if xd and yd:
            return -1 if int(x) < int(y) else 1
        if xd:
            return -1
        if yd:
            return 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


def compare(a: SemVer, b: SemVer) -> int:
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    return _cmp_pre(a.pre, b.pre)


_CV = r"v?([0-9xX*]+)(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?" \
      r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
_OPS = r"=|!=|>=|=>|<=|=<|>|<|~>|~|\^"
_CONSTRAINT_RE = re.compile(rf"^\s*({_OPS})?\s*({_CV})\s*$")
_FIND_RE = re.compile(rf"({_OPS})?\s*{_CV}")
_RANGE_RE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")


class _C:
    def __init__(self, op: str, text: str) -> None:
        self.op = op
        m = re.match(_CV, text)
        assert m is not None
        parts = [m.group(1), (m.group(2) or "")[1:], (m.group(3) or "")[1:]]
        self.dirty = False
        nums = []
        for i, p in enumerate(parts):
            if p in ("x", "X", "*") or (p == "" and i > 0):
                self.dirty = True
                nums.append(0)
                for _j in range(i + 1, 3):
                    nums.append(0)
                self.wild = i
                break
            nums.append(int(p))
        else:
            self.wild = 3
        if parts[0] in ("x", "X", "*"):
            self.wild = 0
        self.v = SemVer(nums[0], nums[1], nums[2], m.group(5) or "", m.group(8) or "", text)

    def check(self, v: SemVer) -> bool:
        c = self.v
        if v.pre and not c.pre and self.op != "!=":
            return False
        cmp = compare(v, c)
        op = self.op
        if op in ("", "="):
            if self.dirty:
                return self._in_wild(v)
            return cmp == 0
        if op == "!=":
            return not self._in_wild(v) if self.dirty else cmp != 0
        if op == ">":
            if self.dirty and self.wild <= 2:
                bump = self._bump()
                return compare(v, bump) >= 0
            return cmp > 0
        if op == "<":
            return cmp < 0
        if op in (">=", "=>"):
            return cmp >= 0
        if op in ("<=", "=<"):
            if self.dirty:
                return compare(v, self._bump()) < 0
            return cmp <= 0
        if op in ("~", "~>"):
            if cmp < 0:
                return False
            if self.wild == 0:
                return True
            if v.major != c.major:
                return False
            return not (v.minor != c.minor and self.wild > 1)
        if op == "^":
            if cmp < 0:
                return False
            if c.major > 0 or self.wild <= 1:
                return v.major == c.major
            if c.minor > 0 or self.wild == 2:
                return v.major == 0 and v.minor == c.minor
            return v.major == 0 and v.minor == 0 and v.patch == c.patch
        return False

    def _in_wild(self, v: SemVer) -> bool:
        c = self.v
        if self.wild == 0:
            return True
        if v.major != c.major:
            return False
        if self.wild == 1:
            return True
        return v.minor == c.minor

    def _bump(self) -> SemVer:
        c = self.v
        if self.wild == 1:
            return SemVer(c.major + 1, 0, 0, "", "", "")
        return SemVer(c.major, c.minor + 1, 0, "", "", "")


def _parse_constraints(s: str) -> list[list[_C]]:
    groups = []
    for part in s.split("||"):
        part = _RANGE_RE.sub(lambda m: f" >= {m.group(1)}, <= {m.group(11)} ", part)
        found = [m.group(0) for m in _FIND_RE.finditer(part)]
        rest = _FIND_RE.sub("", part).replace(",", "").strip()
        if not found or rest:
            raise GoError(f"improper constraint: {s}")
        cs = []
        for f in found:
            m = _CONSTRAINT_RE.match(f)
            if m is None:
                raise GoError(f"improper constraint: {f}")
            cs.append(_C(m.group(1) or "", m.group(2)))
        groups.append(cs)
    return groups


@fn(FUNCS, "semver", (STRING,), returns="*semver.Version")
def semver(v: str) -> SemVer:
    return new_version(v)


@fn(FUNCS, "semverCompare", (STRING, STRING), returns="bool")
def semver_compare(constraint: str, version: str) -> bool:
    groups = _parse_constraints(constraint)
    v = new_version(version)
    return any(all(c.check(v) for c in g) for g in groups)
