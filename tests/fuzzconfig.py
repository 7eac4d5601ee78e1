"""Mutation fuzzing of `tidegate check -c`: every configuration gets a verdict, never a crash.

Seeds (KrakenD CE's conformance fixture, a few real-world configurations and a small flexible
config tree) are mutated structurally (extreme numbers, control characters, huge strings, deep
nesting, wrong types, dropped and duplicated keys, protective and unknown namespaces, broken
durations, hosts, url_patterns, methods, encodings) and textually (broken JSON, broken
templates). Each case runs `tidegate check` in a worker process (`tests/fuzzrun.py`) with a
time bound, and ends in one class:

- ``ok`` exit 0, ``invalid`` exit 1 with every error located (file:line[:col] or JSON path),
  ``usage`` exit 2: the verdicts a user may get;
- ``unlocated`` an error without a position (an unforeseen failure wrapped as a build error),
  ``traceback`` an exception escaped or "Traceback" was printed, ``crash`` the worker died,
  ``hang`` the case outlived its time bound: each one a bug.

The generator is deterministic for a seed, so a failure is reproduced by its seed and index.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SEED_FILES = [
    "conformance/fixtures/krakend.json",
    "realworld/configs/krakend__examples__4.encodings__krakend.json",
    "realworld/configs/krakend__examples__5.data-aggregation__krakend.json",
    "realworld/configs/krakend__examples__6.traffic-throttling__krakend.json",
    "realworld/configs/krakend__playground-community__config__krakend__krakend.json",
]
BUGS = ("unlocated", "traceback", "crash", "hang")
CLASSES = ("ok", "invalid", "usage", *BUGS)

BUILTIN_SEED: dict[str, Any] = {
    "version": 3, "name": "fuzz", "port": 8080, "timeout": "3s", "cache_ttl": "300s",
    "host": ["http://127.0.0.1:8081"],
    "extra_config": {"router": {"return_error_msg": True}},
    "endpoints": [
        {"endpoint": "/users/{id}", "method": "GET", "timeout": "800ms",
         "input_headers": ["Authorization"], "input_query_strings": ["q"],
         "backend": [{"url_pattern": "/u/{id}", "encoding": "json",
                      "host": ["http://127.0.0.1:8081", "localhost:8082"],
                      "allow": ["name"], "mapping": {"name": "user"},
                      "extra_config": {"backend/http": {"return_error_code": True}}}]},
        {"endpoint": "/agg", "output_encoding": "json", "concurrent_calls": 2,
         "extra_config": {"proxy": {"sequential": True,
                                    "static": {"strategy": "always", "data": {"x": 1}}}},
         "backend": [{"url_pattern": "/a", "group": "a", "is_collection": True},
                     {"url_pattern": "/b/{resp0_id}", "target": "data", "method": "POST"}]},
    ],
}

# --- the vocabulary of mutations -------------------------------------------------------------

BIG_INTS = [0, -1, 1, 3000, -5, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 2**64 - 1,
            2**64, -(2**63) - 1, 10**30]
FLOATS = [0.5, -0.0, 1e308, -1e308, 5e-324, 1e-7, 3.0, 9.223372036854776e18]
NUMBER_TOKENS = ["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity",
                 "99999999999999999999", "-0", "0x10", "01", "1.", ".5", "1e", "+1"]
CONTROL = ["\x00", "\r\n", "\n", "\r", "\t", " ", "\x7f", "\x1b[31m", "\u2028", "\ud800",
           "\ufeff", "%00", "%", "\\", '"', "{", "}", "é", "\U0001f600"]
DURATIONS = ["-5s", "9999999999999999999h", "99999999999h", "1e400s", "1.5.5s", "3000", "0",
             "", "5µs", "5μs", "1h1h1h", ".s", "5 s", "s", "-0", "+3s", "2562047h47m16.854775807s",
             "2562047h47m16.854775808s", "0.0000000001ns", "1ns", "3", "1d", "5S", "\x00s",
             "9" * 400 + "s", "1." + "9" * 400 + "s"]
DURATION_INTS = [3000, -5, 0, 1, 999_999, 1_000_000, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
HOSTS = ["http://a b:80", "http://a\x00b", "http://ab\r\n:80", "http://ab\n", " http://ab",
         "http://ab ", "http://[::1", "http://[::1]:80", "http://a:99999", "http://a:-1",
         "http://a:8o", "ftp://x", "", "http://", "http://user@host", "unix:///x",
         "http://%zz", "http://a/b/c", "http://a?x=1", "http://a#f", "localhost", "127.0.0.1:8080",
         "http://a\tb", "HTTP://A", "http://é.com", "http://a:80:80", "//a", "http:///"]
PATTERNS = ["/{x}", "/{id}", "{{", "/%zz", "/a?b={id}", "", "no-slash", "/{resp0_x}",
            "/{resp9_x}", "/a b", "/\x00", "/a\r\nb", "/{JWT.sub}", "/{}", "/{id", "/*",
            "/a/../b", "/" + "a" * 5000, "?x=1", "#frag", "/a?%zz"]
METHODS = ["get", "FOO", "", "G E T", "\x00", "POST", "PATCH", "CONNECT", "TRACE", "get\r\n",
           "OPTIONS", "HEAD", "DELETE", "PUT"]
ENCODINGS = ["json", "xml", "rss", "string", "no-op", "safejson", "negotiate", "yaml", "JSON",
             "", "fast-json", "\x00"]
ENDPOINTS = ["/__health", "/__debug/", "/__debug/{x}", "/__echo/", "/__stats", "/{a}/{a}",
             "/*", "/a/*/b", "/{}", "/a b", "/\x00", "", "a", "/{a}/{b}", "/{a-b}", "/{1}",
             "/a/{x}/*", "//", "/a/", "/a//b", "/%2e%2e", "/" + "x" * 5000, "/{x}{y}",
             "/{" + "a" * 300 + "}"]
NAMESPACES = ["auth/validator", "auth/signer", "auth/basic", "auth/api-keys", "security/cors",
              "security/http", "security/bot-detector", "qos/ratelimit/router",
              "qos/ratelimit/proxy", "qos/circuit-breaker", "qos/http-cache",
              "validation/json-schema", "validation/cel", "governance/quota", "plugin/http-server",
              "plugin/http-client", "modifier/lua-endpoint", "modifier/lua-proxy",
              "modifier/lua-backend", "modifier/martian", "backend/http", "backend/http/client",
              "proxy", "router", "telemetry/logging", "telemetry/metrics",
              "telemetry/opentelemetry", "documentation/openapi", "backend/graphql",
              "backend/lambda", "github_com/devopsfaith/krakend-cors",
              "github.com/devopsfaith/krakend/proxy", "foo/bar", "auth/validatr",
              "qos/ratelimit/routr", "security/", "plugin/", "", "@comment", "x" * 300]
ROOT_KEYS = ["tls", "client_tls", "plugin", "port", "listen_ip", "read_timeout",
             "write_timeout", "idle_timeout", "read_header_timeout", "max_header_bytes",
             "disable_keep_alives", "output_encoding", "debug_endpoint", "echo_endpoint",
             "disable_rest", "name", "host", "timeout", "cache_ttl", "version", "endpoints",
             "extra_config", "$schema", "sequential_start", "async_agent", "dns_cache_ttl"]
DURATION_KEY = re.compile(r"(timeout|ttl|_age|every|interval|time|period|duration|window)$",
                          re.IGNORECASE)
STRING_ODDITIES = [
    "", "null", "true", "0", "-1", "1e400", "é", "\ud800", "\udfff\ud800", "${HOME}",
    "{{ .x }}", "%s%n%x", "../../etc/passwd", "*", "\\", '"', "\x00", "\r\n", "a\x00b",
    "\u202e", "\ufeff", "\U0001d518\U0001d52b",
]

DOT_PATHS = ["a", "a.b", "a..b", "", ".", "a.", "*", "a.*.b", "a.*", "0", "a.0.b", "a.-1",
             "\x00", "a b", "x" * 300, ".".join(["a"] * 300), "__proto__", "a.*.*.*"]
KIND_VALUES: dict[str, list[Any]] = {
    "boolean": [True, False, "true", 1, 0, None],
    "integer": [0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, "1", 1e308],
    "string": ["", "/", "/__health", "/__debug/", "no-slash", "/a b", "/{x}", "x" * 5000,
               "\x00", "%zz", "é"],
    "strings": [[], [""], ["*"], ["a", "a"], DOT_PATHS, ["\r\n"], "a", [1]],
    "enum": ["", "x", "JSON", None, 1],
    "mapping": [{"a": "b"}, {"a": ""}, {"": "b"}, {"a": "a.b"}, {"a.b": "c"}, {"a": 1}, []],
    "object": [{}, {"a": 1}, [], "x", {"error": {"x": [1, 2]}}],
    "array": [[], [{}], [{"type": "move", "args": ["a", "b"]}],
              [{"type": "del", "args": DOT_PATHS}], [{"type": "append", "args": ["a"]}],
              [{"type": "move", "args": ["a"]}], [{"type": "x"}], [1], "x"],
    "shape": [{}, {"strategy": "always", "data": {"a": 1}}, {"strategy": "x"},
              {"strategy": "success", "data": []}, {"data": {"a": {"b": None}}}, []],
}

# Placeholders replaced in the serialized text (the structures they stand for would be too
# deep or too big to walk as Python data).
_DEEP = "\x00DEEP:"
_HUGE = "\x00HUGE:"
_DUP = "\x00DUP:"


@dataclass
class Case:
    """One configuration to check: its files, the flags and environment of the run."""

    index: int
    files: dict[str, bytes]
    config: str  # the file given to -c, relative to the case folder
    env: dict[str, str] = field(default_factory=dict)  # "{dir}" stands for the case folder
    args: list[str] = field(default_factory=list)
    what: list[str] = field(default_factory=list)  # the mutations applied, for the report


@dataclass
class Outcome:
    """The verdict on one case."""

    case: Case
    kind: str
    signature: str = ""
    code: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0


# --- seeds -----------------------------------------------------------------------------------


def load_seeds() -> list[dict[str, Any]]:
    """The built-in seed, and the shared corpus when it is beside the repository."""
    seeds: list[dict[str, Any]] = [BUILTIN_SEED]
    for rel in SEED_FILES:
        path = SHARED / rel
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                seeds.append(data)
    return seeds


FC_BASE = """{
  "version": 3,
  "name": "{{ .service.name }}",
  "port": {{ .service.port }},
  "timeout": "{{ .service.timeout }}",
  "endpoints": [
    {{- range $i, $e := .endpoints.list }}{{ if $i }},{{ end }}
    {{ template "endpoint.tmpl" $e }}
    {{- end }}
  ]
}
"""
FC_ENDPOINT = """{
      "endpoint": "{{ .path }}",
      "method": {{ .method | default "GET" | toJson }},
      "backend": [{ {{ include "host.txt" }}, "url_pattern": {{ .url | toJson }} }]
    }"""
FC_PARTIAL = '"host": ["http://127.0.0.1:8081"]'
FC_SETTINGS = {
    "service.json": {"name": "fc", "port": 8080, "timeout": "3s"},
    "endpoints.json": {"list": [{"path": "/a", "url": "/x"},
                                {"path": "/b/{id}", "url": "/y/{id}", "method": "POST"}]},
}
TEMPLATE_SNIPPETS: list[Any] = [
    "{{", "}}", "{{ }}", "{{ end }}", "{{ else }}", "{{/* open", "{{ nope }}", "{{ .x.y.z }}",
    "{{ $undefined }}", "{{ break }}", "{{ 99999999999999999999999999 }}", "{{ 1e400 }}",
    "{{ 0x1p-2000 }}", "{{ -9223372036854775808 }}", "{{ 'a' }}", "{{ 1i }}", "{{ 0x }}",
    '{{ "\\xff" }}', '{{ "unterminated }}', '{{ printf "%!" }}', "{{ index . 99 }}",
    "{{ len 3 }}", "{{ div 1 0 }}", "{{ mod 1 0 }}", '{{ atoi "99999999999999999999" }}',
    '{{ int64 "1e400" }}', '{{ float64 "1e400" }}', "{{ mul 9223372036854775807 2 }}",
    '{{ include "missing.txt" }}', '{{ template "missing" }}', "{{ marshal . }}",
    '{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}',
    '{{ fromJson "[[[[[[" }}', "{{ $x := 1 }}{{ $x.y }}", "{{ range 5 }}{{ end }}",
    '{{ repeat 3 "ab" }}', "{{ toJson .service }}", "{{ .service.timeout | quote }}",
    "{{- -}}", "{{ (1) }}", "{{ ((((1)))) }}",
    ("parens", 50), ("parens", 300), ("parens", 5000), ("parens", 10001),
    ("open_parens", 5000), ("if", 50), ("if", 300), ("if", 5000), ("range", 5000),
    ("with", 3000), ("else_if", 5000), ("define_chain", 2000), ("pipes", 5000),
]


def _snippet(item: Any) -> str:
    if isinstance(item, str):
        return item
    kind, n = item
    if kind == "parens":
        return "{{ " + "(" * n + "1" + ")" * n + " }}"
    if kind == "open_parens":
        return "{{ " + "(" * n + " }}"
    if kind == "if":
        return "{{ if true }}" * n + "x" + "{{ end }}" * n
    if kind == "range":
        return "{{ range $i := list 1 }}" * n + "x" + "{{ end }}" * n
    if kind == "with":
        return "{{ with 1 }}" * n + "x" + "{{ end }}" * n
    if kind == "else_if":
        return "{{ if false }}" + "{{ else if false }}" * n + "{{ end }}"
    if kind == "define_chain":
        chain = "".join(f'{{{{ define "d{i}" }}}}{{{{ template "d{i + 1}" }}}}{{{{ end }}}}'
                        for i in range(n))
        return chain + f'{{{{ define "d{n}" }}}}x{{{{ end }}}}{{{{ template "d0" }}}}'
    if kind == "pipes":
        return "{{ 1" + " | print" * n + " }}"
    raise AssertionError(kind)


# --- serialization ---------------------------------------------------------------------------


def to_json(value: Any, indent: int = 0) -> str:
    """JSON text of `value`, expanding the placeholders for duplicate keys, deep nesting and
    huge strings (lone surrogates are written as escapes, as a JSON file may hold them)."""
    pad = "\n" + "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for k, v in value.items():
            key = k[len(_DUP):] if k.startswith(_DUP) else k
            parts.append(f"{json.dumps(key)}: {to_json(v, indent + 1)}")
        return "{" + pad + ("," + pad).join(parts) + "\n" + "  " * indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[" + ", ".join(to_json(v, indent + 1) for v in value) + "]"
    if isinstance(value, str) and value.startswith(_DEEP):
        kind, n = value[len(_DEEP):].split(":")
        depth = int(n)
        if kind == "list":
            return "[" * depth + "]" * depth
        return '{"a": ' * depth + "1" + "}" * depth
    if isinstance(value, str) and value.startswith(_HUGE):
        n = int(value[len(_HUGE):])
        return json.dumps("x" * n)
    if isinstance(value, float) and value != value:
        return "NaN"
    return json.dumps(value)


# --- the generator ---------------------------------------------------------------------------


class Mutator:
    """Deterministic mutations of a decoded configuration (the seed is deep-copied first)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.what: list[str] = []

    # Where values live
    def nodes(self, data: Any) -> list[tuple[Any, Any]]:
        """(container, key) of every value, breadth-first (bounded)."""
        out: list[tuple[Any, Any]] = []
        queue: list[Any] = [data]
        while queue and len(out) < 5000:
            node = queue.pop(0)
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for k, v in items:
                out.append((node, k))
                if isinstance(v, dict | list):
                    queue.append(v)
        return out

    def pick_where(self, data: Any, pred: Any) -> tuple[Any, Any] | None:
        found = [(c, k) for c, k in self.nodes(data) if pred(c, k)]
        return self.rng.choice(found) if found else None

    def extreme(self, key: Any = None) -> Any:
        r = self.rng
        choice = r.randrange(12)
        if choice == 0:
            return r.choice(BIG_INTS)
        if choice == 1:
            return r.choice(FLOATS)
        if choice == 2:
            return r.choice(STRING_ODDITIES)
        if choice == 3:
            return "a" + r.choice(CONTROL) + "b"
        if choice == 4:
            return f"{_HUGE}{r.choice([1000, 100_000, 1_000_000])}"
        if choice == 5:
            return f"{_DEEP}{r.choice(['list', 'dict'])}:{r.choice([50, 190, 199, 200, 201, 5000])}"
        if choice == 6:
            return r.choice([None, True, False, [], {}, [1, "a", None], {"a": {"b": []}}])
        if choice == 7:
            return r.choice(DURATIONS)
        if choice == 8:
            return r.choice(HOSTS)
        if choice == 9:
            return [r.choice(HOSTS)]
        if choice == 10:
            return r.choice(DURATION_INTS)
        return r.choice(ENDPOINTS)

    # Operators: each changes `data` in place and says what it did
    def replace_any(self, data: Any) -> None:
        nodes = self.nodes(data)
        if nodes:
            c, k = self.rng.choice(nodes)
            c[k] = self.extreme(k)
            self.what.append(f"replace {k!r}")

    def drop_key(self, data: Any) -> None:
        where = self.pick_where(data, lambda c, k: isinstance(c, dict))
        if where:
            c, k = where
            del c[k]
            self.what.append(f"drop {k!r}")

    def duplicate_key(self, data: Any) -> None:
        where = self.pick_where(data, lambda c, k: isinstance(c, dict) and isinstance(k, str))
        if where:
            c, k = where
            c[_DUP + k] = self.extreme(k)
            self.what.append(f"duplicate {k!r}")

    def add_namespace(self, data: Any) -> None:
        levels = [data]
        eps = data.get("endpoints") if isinstance(data, dict) else None
        if isinstance(eps, list):
            for ep in eps:
                if isinstance(ep, dict):
                    levels.append(ep)
                    bes = ep.get("backend")
                    levels.extend(b for b in bes if isinstance(b, dict)) if isinstance(
                        bes, list) else None
        level = self.rng.choice([lv for lv in levels if isinstance(lv, dict)] or [{}])
        extra = level.setdefault("extra_config", {})
        if not isinstance(extra, dict):
            level["extra_config"] = extra = {}
        name = self.rng.choice(NAMESPACES)
        value = self.rng.choice([{}, {"x": 1}, self.extreme(), {
            "return_error_msg": self.rng.choice([True, "yes", 1]),
            "sequential": self.rng.choice([True, 0, "true"]),
            "max_rate": self.rng.choice(BIG_INTS), "capacity": self.rng.choice(BIG_INTS),
            "every": self.rng.choice(DURATIONS + DURATION_INTS),
            "interval": self.rng.choice(DURATIONS), "timeout": self.rng.choice(DURATIONS),
            "max_age": self.rng.choice(DURATIONS), "allow_origins": self.rng.choice(HOSTS),
            "static": {"strategy": self.rng.choice(["always", "x", 1]), "data": self.extreme()},
            "flatmap_filter": [{"type": self.rng.choice(["move", "del", "x"]),
                                "args": [self.rng.choice(STRING_ODDITIES)]}],
        }])
        extra[name] = value
        self.what.append(f"namespace {name!r}")

    def mutate_duration(self, data: Any) -> None:
        where = self.pick_where(data, lambda c, k: isinstance(k, str) and DURATION_KEY.search(k))
        c, k = where or (data, "timeout")
        c[k] = self.rng.choice(DURATIONS + DURATION_INTS)
        self.what.append(f"duration {k!r}={c[k]!r}")

    def mutate_list_value(self, data: Any, key: str, values: list[Any]) -> None:
        where = self.pick_where(data, lambda c, k: k == key)
        if where is None:
            return
        c, k = where
        new = self.rng.choice(values)
        if isinstance(c[k], list) and c[k]:
            c[k][self.rng.randrange(len(c[k]))] = new
        else:
            c[k] = [new] if key == "host" and self.rng.random() < 0.7 else new
        self.what.append(f"{key}={new!r}")

    def clone_endpoint(self, data: Any) -> None:
        eps = data.get("endpoints") if isinstance(data, dict) else None
        if isinstance(eps, list) and eps:
            eps.append(json.loads(json.dumps(self.rng.choice(eps))))
            self.what.append("clone endpoint")

    def rename_key(self, data: Any) -> None:
        where = self.pick_where(data, lambda c, k: isinstance(c, dict) and isinstance(k, str))
        if where:
            c, k = where
            new = self.rng.choice([k[:-1], k + "s", k.upper(), k.replace("_", "-"),
                                   self.rng.choice(ROOT_KEYS), ""])
            if new not in c:
                c[new] = c.pop(k)
                self.what.append(f"rename {k!r}->{new!r}")

    def swap_type(self, data: Any) -> None:
        where = self.pick_where(data, lambda c, k: isinstance(c[k], dict | list | str))
        if where:
            c, k = where
            v = c[k]
            c[k] = (list(v.values()) if isinstance(v, dict) else
                    {str(i): x for i, x in enumerate(v)} if isinstance(v, list) else [v])
            self.what.append(f"swap type {k!r}")

    def schema_field(self, data: Any) -> None:
        """Set an attribute tidegate acts on (from its own field tables) at its level."""
        from tidegate.config.fields import SCOPES
        from tidegate.config.namespaces import NAMESPACES as KNOWN

        levels: list[tuple[str, Any]] = [("service", data)] if isinstance(data, dict) else []
        for ep in _items(data, "endpoints"):
            levels.append(("endpoint", ep))
            levels.extend(("backend", be) for be in _items(ep, "backend"))
        if not levels:
            return
        scope, obj = self.rng.choice(levels)
        fields = dict(SCOPES[scope])
        owner = obj
        if self.rng.random() < 0.5:
            spaces = [n for n, ns in KNOWN.items() if ns.supported and ns.fields
                      and scope in ns.fields]
            if spaces:
                name = self.rng.choice(spaces)
                extra = obj.setdefault("extra_config", {})
                if not isinstance(extra, dict):
                    obj["extra_config"] = extra = {}
                owner = extra.setdefault(name, {})
                if not isinstance(owner, dict):
                    extra[name] = owner = {}
                fields = dict(KNOWN[name].fields[scope])
        key = self.rng.choice(sorted(fields))
        kind = fields[key].kind
        values = KIND_VALUES.get(kind, [])
        if kind == "duration":
            values = DURATIONS + DURATION_INTS
        owner[key] = self.rng.choice(values) if values and self.rng.random() < 0.8 \
            else self.extreme(key)
        self.what.append(f"{scope} {key}={_short(owner[key])}")

    def add_root_key(self, data: Any) -> None:
        if isinstance(data, dict):
            k = self.rng.choice(ROOT_KEYS)
            data[k] = self.extreme(k)
            self.what.append(f"root {k!r}")

    def mutate(self, data: Any, count: int) -> None:
        ops = [
            (self.replace_any, 6), (self.drop_key, 2), (self.duplicate_key, 1),
            (self.add_namespace, 3), (self.mutate_duration, 3),
            (lambda d: self.mutate_list_value(d, "host", HOSTS), 3),
            (lambda d: self.mutate_list_value(d, "url_pattern", PATTERNS), 2),
            (lambda d: self.mutate_list_value(d, "method", METHODS), 1),
            (lambda d: self.mutate_list_value(d, "encoding", ENCODINGS), 1),
            (lambda d: self.mutate_list_value(d, "output_encoding", ENCODINGS), 1),
            (lambda d: self.mutate_list_value(d, "endpoint", ENDPOINTS), 2),
            (self.clone_endpoint, 1), (self.rename_key, 1), (self.swap_type, 1),
            (self.add_root_key, 2), (self.schema_field, 6),
        ]
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        for _ in range(count):
            self.rng.choices(funcs, weights)[0](data)


def _items(obj: Any, key: str) -> list[dict[str, Any]]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def mutate_text(rng: random.Random, text: str, what: list[str]) -> str:
    """One textual mutation of a JSON text."""
    choice = rng.randrange(7)
    if choice == 0 and text:
        cut = rng.randrange(len(text))
        what.append(f"truncate at {cut}")
        return text[:cut]
    if choice == 1:
        numbers = list(re.finditer(r"(?<![\w\"])-?\d+(\.\d+)?([eE][-+]?\d+)?", text))
        if numbers:
            m = rng.choice(numbers)
            token = rng.choice(NUMBER_TOKENS)
            what.append(f"number {m.group()}->{token}")
            return text[:m.start()] + token + text[m.end():]
    if choice == 2:
        what.append("bom")
        return "\ufeff" + text
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    if choice == 3:
        what.append(f"duplicate line {i + 1}")
        lines.insert(i, lines[i])
    elif choice == 4:
        what.append(f"delete line {i + 1}")
        del lines[i]
    else:
        pos = rng.randrange(len(lines[i]) + 1)
        junk = rng.choice(["\x00", "{", '"', "\\", ",", "]", "}", "\ud800", "\x7f", "/*", "//",
                           "\t", "'", "é"])
        what.append(f"insert {junk!r} at line {i + 1}")
        lines[i] = lines[i][:pos] + junk + lines[i][pos:]
    return "\n".join(lines)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@dataclass
class FlexibleSeed:
    """A real flexible-config tree: its files and the FC_* variables of its run."""

    files: dict[str, bytes]
    config: str
    env: dict[str, str]


def load_flexible_seeds() -> list[FlexibleSeed]:
    """The shared corpus's flexible configurations that run as plain CE ones."""
    out: list[FlexibleSeed] = []
    with contextlib.suppress(OSError):
        rows = (SHARED / "realworld" / "FC_RUNS.tsv").read_text().splitlines()[1:]
        for row in rows:
            cols = (row.split("\t") + [""] * 6)[:6]
            folder, template, settings, partials, templates, extra = cols
            if "+" in settings or "@" in extra:
                continue
            root = SHARED / "realworld" / folder
            files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                     if p.is_file() and p.stat().st_size < 200_000}
            env = {"FC_ENABLE": "1"}
            for var, sub in (("FC_SETTINGS", settings), ("FC_PARTIALS", partials),
                             ("FC_TEMPLATES", templates)):
                if sub:
                    env[var] = "{dir}/" + sub
            env.update(pair.split("=", 1) for pair in extra.split() if "=" in pair)
            out.append(FlexibleSeed(files, template, env))
    return out


def _generate_real_flexible(rng: random.Random, index: int, seed: FlexibleSeed) -> Case:
    files = dict(seed.files)
    what = [f"flexible {seed.config} of {len(files)} files"]
    texts = sorted(n for n, b in files.items() if n.endswith((".tmpl", ".json", ".txt")))
    for _ in range(rng.choice([1, 1, 2])):
        name = rng.choice(texts or [seed.config])
        text = files[name].decode("utf-8", "replace")
        if name.endswith(".json") and rng.random() < 0.6:
            with contextlib.suppress(ValueError):
                data = json.loads(text)
                m = Mutator(rng)
                m.mutate(data, rng.choice([1, 2]))
                files[name] = _encode(to_json(data))
                what += [f"{name} {w}" for w in m.what]
                continue
        snippet = _snippet(rng.choice(TEMPLATE_SNIPPETS))
        pos = rng.randrange(len(text) + 1)
        files[name] = _encode(text[:pos] + snippet + text[pos:])
        what.append(f"{name}@{pos}: {_short(snippet)}")
    case = Case(index, files, seed.config, dict(seed.env), what=what)
    _maybe_flags(rng, case)
    return case


def generate(rng: random.Random, index: int, seeds: list[dict[str, Any]],
             flexible: list[FlexibleSeed] | None = None) -> Case:
    """One case: a mutated JSON (sometimes YAML) configuration, or a mutated flexible config."""
    if flexible and rng.random() < 0.1:
        return _generate_real_flexible(rng, index, rng.choice(flexible))
    if rng.random() < 0.15:
        return _generate_flexible(rng, index)
    seed = json.loads(json.dumps(rng.choice(seeds)))
    m = Mutator(rng)
    m.mutate(seed, rng.choice([1, 1, 2, 3, 5]))
    case = Case(index, {}, "krakend.json", what=m.what)
    text = to_json(seed)
    if rng.random() < 0.15:
        text = mutate_text(rng, text, case.what)
    elif rng.random() < 0.08 and _DEEP not in text and _HUGE not in text:
        import yaml

        with contextlib.suppress(Exception):
            text = yaml.safe_dump(json.loads(text), allow_unicode=True)
            case.config = "krakend.yaml"
            case.what.append("as yaml")
    case.files[case.config] = _encode(text)
    _maybe_allow(rng, case, seed)
    _maybe_flags(rng, case)
    if rng.random() < 0.05:
        key = rng.choice(ROOT_KEYS).upper().lstrip("$")
        value = rng.choice([*DURATIONS, *map(str, BIG_INTS), *HOSTS, "true", "yes", "[[["])
        case.env[f"KRAKEND_{key}"] = value.replace("\x00", "")  # no NUL in the environment
        case.what.append(f"KRAKEND_{key}={value!r}")
    return case


def _maybe_flags(rng: random.Random, case: Case) -> None:
    """Lint a quarter of the cases; print what was understood for some."""
    if rng.random() < 0.25:
        case.args.append("-l")
    if rng.random() < 0.1:
        case.args.append(rng.choice(["-d", "-dd", "-ddd"]))


def _maybe_allow(rng: random.Random, case: Case, data: Any) -> None:
    """Half the time, opt out of fail-closed for what the case asks, to reach the pipeline."""
    if rng.random() < 0.5:
        return
    from tidegate.config.namespaces import NAMESPACES, PROTECTING_ROOT_SETTINGS
    from tidegate.lint.failclosed import find_unprotected

    names = sorted({u.name for u in find_unprotected(data)
                    if u.name in NAMESPACES or u.name in PROTECTING_ROOT_SETTINGS})
    for name in names:
        case.args += ["--allow-unimplemented", name]


def _generate_flexible(rng: random.Random, index: int) -> Case:
    what: list[str] = ["flexible"]
    files = {"krakend.tmpl": FC_BASE, "templates/endpoint.tmpl": FC_ENDPOINT,
             "partials/host.txt": FC_PARTIAL}
    settings = json.loads(json.dumps(FC_SETTINGS))
    for _ in range(rng.choice([0, 1, 1, 2])):
        target = rng.choice(["krakend.tmpl", "templates/endpoint.tmpl", "partials/host.txt"])
        snippet = _snippet(rng.choice(TEMPLATE_SNIPPETS))
        text = files[target]
        pos = rng.randrange(len(text) + 1)
        files[target] = text[:pos] + snippet + text[pos:]
        what.append(f"{target}@{pos}: {snippet[:40]!r}{'…' if len(snippet) > 40 else ''}")
    if rng.random() < 0.6:
        m = Mutator(rng)
        name = rng.choice(sorted(settings))
        m.mutate(settings[name], rng.choice([1, 2]))
        what += [f"settings/{name} {w}" for w in m.what]
    out = {name: _encode(text) for name, text in files.items()}
    for name, value in settings.items():
        text = to_json(value)
        if rng.random() < 0.1:
            text = mutate_text(rng, text, what)
        out[f"settings/{name}"] = _encode(text)
    env = {"FC_ENABLE": "1", "FC_SETTINGS": "{dir}/settings", "FC_PARTIALS": "{dir}/partials",
           "FC_TEMPLATES": "{dir}/templates"}
    if rng.random() < 0.3:
        env["FC_OUT"] = "{dir}/out.json"
    case = Case(index, out, "krakend.tmpl", env, what=what)
    _maybe_flags(rng, case)
    return case


def cases(seed: int, count: int) -> Iterator[Case]:
    """`count` cases, the same for the same seed."""
    rng = random.Random(seed)
    seeds = load_seeds()
    flexible = load_flexible_seeds()
    for i in range(count):
        yield generate(random.Random(rng.getrandbits(64)), i, seeds, flexible)
