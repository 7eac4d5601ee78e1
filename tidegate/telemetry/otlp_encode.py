"""OTLP trace protobuf, written directly: what a span costs on the request path.

The OpenTelemetry SDK's tracer and its OTLP encoder spend tens of microseconds per span in
CPython (locks, attribute validation, one Python protobuf object per attribute), hundreds per
traced request: too much for a gateway. A stage knows at compile time almost all of its span
(name, kind, fixed attributes, the generation's): `SpanTemplate` encodes that once, and a
request only adds ids, times, a few attributes and the status, as bytes. The batching and the
bounded queue stay the SDK's (`tracing.TraceRuntime`); the tests decode every export with
opentelemetry-proto's own messages.

Field numbers are those of opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any, Final

# SpanKind
INTERNAL, SERVER, CLIENT = 1, 2, 3
# Status.StatusCode
UNSET, OK, ERROR = 0, 1, 2

# Final: compiled, a module constant is read directly, not looked up in the module's dict.
_FIXED64: Final = struct.Struct("<Q")
_STATUS: Final = {UNSET: b"", OK: b"\x7a\x02\x18\x01", ERROR: b"\x7a\x02\x18\x02"}
_DOUBLE: Final = struct.Struct("<d")
# One-byte strings by value: varints and tags below 128 are looked up, not built.
_BYTE: Final = [bytes((i,)) for i in range(256)]


def varint(n: int) -> bytes:
    """Protobuf base-128 varint (negative int64 as its two's complement, ten bytes)."""
    if 0 <= n < 0x80:
        return _BYTE[n]
    if n < 0:
        n += 1 << 64
    elif n < 0x4000:
        return _BYTE[(n & 0x7F) | 0x80] + _BYTE[n >> 7]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message)."""
    return b"".join((varint(number << 3 | 2), varint(len(payload)), payload))


def any_value(value: Any) -> bytes:
    """An AnyValue message."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, list | tuple):
        return field(5, b"".join(field(1, any_value(v)) for v in value))
    return field(1, str(value).encode())


def key_value(key: str, value: Any) -> bytes:
    """A KeyValue message."""
    return field(1, key.encode()) + field(2, any_value(value))


def attributes(number: int, attrs: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> bytes:
    """Repeated KeyValue field `number` (9 in a Span, 1 in a Resource, 3 in an Event)."""
    items = attrs.items() if isinstance(attrs, Mapping) else attrs
    return b"".join(field(number, key_value(k, v)) for k, v in items)


# Encoded span attributes by (key, value, type): status codes, routes, methods, hosts repeat,
# so each distinct pair is encoded once. Cleared when full (it follows what traffic repeats).
_MEMO: Final[dict[tuple[str, Any, type], bytes]] = {}
MEMO_SIZE: Final = 4096
MEMO_VALUE: Final = 256  # characters of a value `Attr.text_memo` remembers, at most


def span_attributes(attrs: Mapping[str, Any]) -> bytes:
    """A span's attributes (field 9), the repeating ones from a bounded memo."""
    memo = _MEMO
    out = []
    for k, v in attrs.items():
        t = type(v)
        if t is str or t is int or t is bool:
            key = (k, v, t)
            data = memo.get(key)
            if data is None:
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                data = memo[key] = field(9, key_value(k, v))
            out.append(data)
        else:
            out.append(field(9, key_value(k, v)))
    return b"".join(out)


def name_field(name: str) -> bytes:
    """A Span's name (field 5): a short one with a tag and length looked up."""
    raw = name.encode()
    n = len(raw)
    return _NAME[n] + raw if n < 0x80 else field(5, raw)


_NAME: Final = [b"\x2a" + _BYTE[n] for n in range(0x80)]


def status(code: int, message: str = "") -> bytes:
    """A span's Status (field 15)."""
    if not message:
        return _STATUS[code]
    return field(15, field(2, message.encode()) + (b"\x18" + varint(code) if code else b""))


def resource_scope(resource: Mapping[str, Any], scope: str, version: str) -> tuple[bytes, bytes]:
    """The encoded Resource and InstrumentationScope every batch starts with."""
    return attributes(1, resource), field(1, scope.encode()) + field(2, version.encode())


def frame(span: bytes) -> bytes:
    """A Span as an item of ScopeSpans (field 2): framed spans concatenate."""
    return b"\x12" + varint(len(span)) + span


def export_request(resource: bytes, scope: bytes, framed: Iterable[bytes]) -> bytes:
    """An ExportTraceServiceRequest with one ResourceSpans and one ScopeSpans of the
    `frame`d spans (each item one span or several, or a piece of them), joined once."""
    scope_field = field(1, scope)
    resource_field = field(1, resource)
    out = [b"\x0a", b"", resource_field, b"", scope_field]
    size = 0
    for piece in framed:
        size += len(piece)
        out.append(piece)
    scope_spans = len(scope_field) + size
    out[3] = b"\x12" + varint(scope_spans)
    out[1] = varint(len(resource_field) + len(out[3]) + scope_spans)
    return b"".join(out)


class Attr:
    """One span attribute's key, encoded once; `text`, `integer`... give the whole attribute
    (a Span's field 9) for a value. The ``*_memo`` forms remember what repeats (status codes,
    methods, hosts), a bounded memo per key."""

    __slots__ = ("_double", "_ints", "_key", "_short", "_texts")

    def __init__(self, key: str) -> None:
        self._key = field(1, key.encode())
        self._texts: dict[str, bytes] = {}
        self._ints: dict[int, bytes] = {}
        # A text's attribute but its bytes, by their length, while every length in it fits
        # one byte: such a value costs one concatenation.
        k = self._key
        self._short = [b"".join((b"\x4a", _BYTE[len(k) + n + 4], k, b"\x12", _BYTE[n + 2],
                                 b"\x0a", _BYTE[n])) for n in range(max(0, 120 - len(k)))]
        # A double's attribute but its 8 bytes: every length in it is fixed.
        self._double = b"".join((b"\x4a", varint(len(self._key) + 11), self._key,
                                 b"\x12\x09\x21"))

    def _wrap(self, value: bytes) -> bytes:
        """Field 9 of a KeyValue of this key and the encoded AnyValue `value`."""
        kv = b"".join((self._key, b"\x12", varint(len(value)), value))
        return b"".join((b"\x4a", varint(len(kv)), kv))

    def text(self, value: str) -> bytes:
        raw = value.encode()
        n = len(raw)
        short = self._short
        if n < len(short):
            return short[n] + raw
        return self._wrap(b"".join((b"\x0a", varint(n), raw)))

    def text_memo(self, value: str) -> bytes:
        if len(value) > MEMO_VALUE:  # a long value is encoded each time, never held
            return self.text(value)
        data = self._texts.get(value)
        if data is None:
            if len(self._texts) >= MEMO_SIZE:
                self._texts.clear()
            data = self._texts[value] = self.text(value)
        return data

    def integer(self, value: int) -> bytes:
        data = self._ints.get(value)
        if data is None:
            if len(self._ints) >= MEMO_SIZE:
                self._ints.clear()
            data = self._ints[value] = self._wrap(b"\x18" + varint(value))
        return data

    def boolean(self, value: bool) -> bytes:
        return self._wrap(b"\x10\x01" if value else b"\x10\x00")

    def double(self, value: float) -> bytes:
        return self._double + _DOUBLE.pack(value)


class SpanTemplate:
    """What one stage's spans share, encoded once: name, kind and fixed attributes."""

    __slots__ = ("_fixed", "_kind", "_kind_start", "_name", "_name_kind")

    def __init__(self, name: str, kind: int, fixed: Mapping[str, Any]) -> None:
        self._name = field(5, name.encode())
        self._kind = b"\x30" + varint(kind)
        # ...and the tag of the start time (field 7, fixed64) that follows them.
        self._kind_start = self._kind + b"\x39"
        self._name_kind = self._name + self._kind_start
        self._fixed = attributes(9, fixed)

    def encode(self, trace_id: bytes, span_id: int, parent_id: int, start_ns: int,
               end_ns: int, attrs: Mapping[str, Any] | None = None, code: int = UNSET,
               message: str = "", name: str | None = None, trace_state: str = "",
               events: bytes = b"") -> bytes:
        """One Span message (`name` overrides the template's, e.g. the request path)."""
        out = [b"\x0a\x10", trace_id, b"\x12\x08", span_id.to_bytes(8, "big")]
        if trace_state:
            out.append(field(3, trace_state.encode()))
        if parent_id:
            out += (b"\x22\x08", parent_id.to_bytes(8, "big"))
        out += (self._name if name is None else field(5, name.encode()), self._kind,
                b"\x39", _FIXED64.pack(start_ns), b"\x41", _FIXED64.pack(end_ns), self._fixed)
        if attrs:
            out.append(span_attributes(attrs))
        if events:
            out.append(events)
        if code or message:
            out.append(status(code, message))
        return b"".join(out)

    def add(self, out: list[bytes], head: bytes, span_id: bytes, links: bytes,
            start_ns: int, end_ns: int, attrs: list[bytes], tail: bytes = b"",
            name: bytes = b"") -> None:
        """Append one `frame`d Span to `out` (joined with the request's others when it ends):
        `head` is field 1 and the tag of field 2 (``b"\\x0a\\x10" + trace id +
        b"\\x12\\x08"``), `span_id` its 8 bytes, `links` fields 3 and 4 (trace state,
        parent), `attrs` encoded attributes (`Attr`), `tail` events and status, `name` an
        encoded name field instead of the template's. The span is one bytes object made by
        one formatting (compiled, one allocation and a copy of each piece): a join of its
        dozen pieces, there or later, costs about twice as much."""
        name_kind = name + self._kind_start if len(name) else self._name_kind
        fixed = self._fixed
        values = attrs[0] if len(attrs) == 1 else b"".join(attrs)
        size = len(head) + 8 + len(links) + len(name_kind) + 17 + len(fixed) + len(values) \
            + len(tail)
        if size < 0x4000:  # field 2's tag and a length of one or two bytes, looked up
            frame = _FRAME[size]
            if frame is None:
                frame = _FRAME[size] = b"\x12" + varint(size)
        else:
            frame = b"\x12" + varint(size)
        # ...field 7 (its tag ends `name_kind`) and 8, fixed64
        out.append(b"%b%b%b%b%b%b\x41%b%b%b%b" % (
            frame, head, span_id, links, name_kind, start_ns.to_bytes(8, "little"),
            end_ns.to_bytes(8, "little"), fixed, values, tail))


# Field 2's tag and length of a framed span below 16 KiB, by size, made as sizes are seen
# (a varint and a concatenation cost more than a list lookup).
_FRAME: Final[list[bytes | None]] = [None] * 0x4000


def event(name: str, time_ns: int, attrs: Mapping[str, Any]) -> bytes:
    """A span's Event (field 11)."""
    return field(11, b"\x09" + _FIXED64.pack(time_ns) + field(2, name.encode())
                 + attributes(3, attrs))
