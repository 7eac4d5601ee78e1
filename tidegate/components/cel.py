"""``validation/cel``: CEL expressions that let a request or a response through, or abort it.

KrakenD CE semantics (krakend-cel): the section is a list of ``{"check_expr": ...}``; each
expression is routed by **substring** (``req`` → evaluated before the call, ``resp`` → after
it, ``JWT`` → with the token's claims once auth/validator accepted it; one expression can land
in several lists) and numbered inside each list. An expression must evaluate to ``true``;
``false``, another value or an evaluation error aborts with ``request aborted by evaluator
#N``: a 500 at endpoint level, that backend's failure at backend level (the others still
merge), a 401 for the JWT list.

KrakenD drops an expression that fails cel-go's type check (debug log) and switches off all CEL
of the endpoint on a syntax error (a warning): the endpoint then serves unchecked. tidegate
refuses the config instead, with the location and the parser's or checker's message. The
expressions are parsed, checked and compiled once per generation (`parse`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from tidegate.components import cel_fast, cel_program
from tidegate.components.cel_types import CelType, CelTypeError, result_type, show
from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.config.component_schemas import array, closed
from tidegate.errors import ConfigValueError
from tidegate.messages import (
    BackendFailure,
    BackendProxy,
    EndpointHandler,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    Request,
    Response,
)

NAMESPACE = "validation/cel"
JWT_VALIDATOR = "auth/validator"
PRE, POST, JWT = "req", "resp", "JWT"

log = logging.getLogger("tidegate.cel")
# cel-python logs each evaluation error at ERROR: per request, and tidegate logs its own line.
logging.getLogger("celpy").setLevel(logging.CRITICAL)

_STRING_LISTS: CelType = ("map", "string", ("list", "string"))
DECLARED: dict[str, CelType] = {
    "now": "string",
    "req_method": "string",
    "req_path": "string",
    "req_params": ("map", "string", "string"),
    "req_headers": _STRING_LISTS,
    "req_querystring": _STRING_LISTS,
    "resp_completed": "bool",
    "resp_metadata_status": "int",
    "resp_metadata_headers": _STRING_LISTS,
    "resp_data": ("map", "string", "dyn"),
    "JWT": ("map", "string", "dyn"),
}

def _environment() -> celpy.Environment:
    """cel-python's environment; its constructor raises the process's recursion limit to 2500
    (for deep expressions), which would change how everything else fails on deep input: the
    limit is put back (a too deep expression is then a located config error)."""
    limit = sys.getrecursionlimit()
    try:
        return celpy.Environment(runner_class=celpy.CompiledRunner)
    finally:
        sys.setrecursionlimit(limit)


_ENV = _environment()


class Aborted(BackendFailure):
    """An evaluator said no (KrakenD's ``request aborted by evaluator #N``)."""

    def __init__(self, index: int) -> None:
        super().__init__(f"request aborted by evaluator #{index}")


@dataclass(frozen=True, slots=True)
class Evaluator:
    """One compiled expression: its source, its program and the variables it reads."""

    source: str
    program: Callable[[Mapping[str, Any]], Any]
    names: frozenset[str]
    # The same check compiled over the request or the response itself (`cel_fast`), for the
    # list whose variables it reads (`kind`: PRE or POST); None: cel-python evaluates it.
    fast: Callable[[Any], bool] | None = None
    kind: str = ""


@dataclass(frozen=True, slots=True)
class CelConfig:
    """The evaluators of one section, per list (numbered inside each, as KrakenD)."""

    pre: tuple[Evaluator, ...]
    post: tuple[Evaluator, ...]
    jwt: tuple[Evaluator, ...]
    jwt_paths: tuple[JsonPath, ...]  # where the JWT expressions are (errors at build)


def _syntax_message(exc: CELParseError) -> str:
    cause = exc.__context__  # lark's exception, raised while cel-python handled it
    where = f"<input>:{exc.line or '?'}:{exc.column or '?'}"
    if isinstance(cause, UnexpectedToken):
        tok = cause.token
        what = "end of expression" if tok.type == "$END" else f"token {str(tok)!r}"
        return f"{where}: Syntax error: unexpected {what}"
    if isinstance(cause, UnexpectedCharacters):
        return f"{where}: Syntax error: token recognition error at: {cause.char!r}"
    return f"{where}: Syntax error: {str(exc.args[0]).splitlines()[0]}"


def _names(tree: Any) -> frozenset[str]:
    """Declared variables the expression mentions (only those are built per request)."""
    found = {str(t.children[0]) for t in tree.iter_subtrees() if t.data == "ident"}
    return frozenset(found & DECLARED.keys())


def compile_expression(source: str, path: JsonPath) -> Evaluator:
    """Parse, type-check against `DECLARED` and compile; errors located at `path`."""
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        raise ConfigValueError(f"CEL syntax error: {_syntax_message(exc)} in {source!r}",
                               path=path) from None
    except RecursionError:
        raise ConfigValueError("CEL expression nested too deeply", path=path) from None
    try:
        out = result_type(tree, DECLARED)
    except CelTypeError as exc:
        raise ConfigValueError(f"CEL type error: {exc} in {source!r} (KrakenD would drop this "
                               "expression silently)", path=path) from None
    except RecursionError:
        raise ConfigValueError("CEL expression nested too deeply", path=path) from None
    if out not in ("bool", "dyn"):
        raise ConfigValueError(f"CEL expression {source!r} is of type {show(out)}: only true "
                               "lets a request through, so it would reject every one",
                               path=path)
    try:
        program = cel_program.program(_ENV, tree)
    except Exception as exc:  # cel-python's compiler refusing what the grammar accepted
        raise ConfigValueError(f"CEL expression {source!r} cannot be compiled: {exc}",
                               path=path) from None
    names = _names(tree)
    for kind, variables in ((PRE, cel_fast.REQUEST_VARS), (POST, cel_fast.RESPONSE_VARS)):
        if names and names <= variables.keys():
            fast = cel_fast.compile_check(tree, variables)
            if fast is not None:
                return Evaluator(source, program, names, fast, kind)
    return Evaluator(source, program, names)


def parse(raw: Any, path: JsonPath) -> CelConfig:
    """The section's evaluators, routed by substring as krakend-cel does."""
    if not isinstance(raw, list):
        raise ConfigValueError("expected a list of {\"check_expr\": ...}", path=path)
    lists: dict[str, list[Evaluator]] = {PRE: [], POST: [], JWT: []}
    jwt_paths: list[JsonPath] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigValueError("expected an object with check_expr", path=(*path, i))
        source = item.get("check_expr", "")
        at = (*path, i, "check_expr")
        if not isinstance(source, str):
            raise ConfigValueError("check_expr must be a string", path=at)
        keys = [k for k in (PRE, POST, JWT) if k in source]
        if not keys:
            raise ConfigValueError(
                "the expression mentions none of req, resp or JWT: KrakenD never evaluates it"
                if source else "no expression (check_expr is empty)", path=at)
        evaluator = compile_expression(source, at)
        for key in keys:
            lists[key].append(evaluator)
        if JWT in keys:
            jwt_paths.append(at)
    return CelConfig(tuple(lists[PRE]), tuple(lists[POST]), tuple(lists[JWT]),
                     tuple(jwt_paths))


# -- per request ------------------------------------------------------------------------------

def now() -> str:
    """Go's ``2006-01-02T15:04:05.999Z07:00`` of the local time."""
    t = time.time()
    local = time.localtime(t)
    millis = f"{int(t * 1000) % 1000:03d}".rstrip("0")
    frac = f".{millis}" if millis else ""
    off = local.tm_gmtoff
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:" \
                                f"{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + frac + zone


# Values built as cel-python's types without their constructors' per-call checks (a MapType()
# of items runs an abc isinstance test, StringType() two isinstance tests): the inputs here are
# already plain str/dict/list, so the result is the same object cel-python would build.
def _s(value: str) -> celtypes.StringType:
    return str.__new__(celtypes.StringType, value)


def _map(items: dict[Any, Any]) -> celtypes.MapType:
    out = celtypes.MapType()
    dict.update(out, items)
    return out


def _string_lists(pairs: Mapping[str, list[str]]) -> celtypes.MapType:
    return _map({_s(k): celtypes.ListType([_s(v) for v in vs]) for k, vs in pairs.items()})


def _query(query: list[tuple[str, str]]) -> celtypes.MapType:
    grouped: dict[str, list[str]] = {}
    for k, v in query:
        grouped.setdefault(k, []).append(v)
    return _string_lists(grouped)


_REQUEST: dict[str, Callable[[ProxyRequest], Any]] = {
    "req_method": lambda r: _s(r.method),
    "req_path": lambda r: _s(r.path),
    "req_params": lambda r: _map({_s(k): _s(v) for k, v in r.params.items()}),
    "req_headers": lambda r: _string_lists(r.headers),
    "req_querystring": lambda r: _query(r.query),
}
_RESPONSE: dict[str, Callable[[ProxyResponse], Any]] = {
    "resp_completed": lambda r: celtypes.BoolType(r.complete),
    # int.__new__: cel-python's IntType() builds an overflow-check wrapper per call
    "resp_metadata_status": lambda r: int.__new__(celtypes.IntType, r.status),
    "resp_metadata_headers": lambda r: _string_lists(r.headers),
    "resp_data": lambda r: json_to_cel(r.data if r.data is not None else {}),
}


def _passes(evaluator: Evaluator, activation: dict[str, Any]) -> bool:
    try:
        result = evaluator.program(activation)
    except Exception:  # any evaluation failure aborts, as cel-go's Eval error
        return False
    # true is a BoolType, or a Python bool where cel-python's macros (has) answer one
    return isinstance(result, celtypes.BoolType | bool) and bool(result)


def evaluate(evaluators: tuple[Evaluator, ...], values: dict[str, Callable[[Any], Any]],
             subject: Any, name: str, kind: str = "") -> int | None:
    """The index of the first evaluator that does not pass, or None when all pass. `kind`
    (PRE or POST) says which compiled checks can read `subject` directly."""
    if not evaluators:
        return None
    activation: dict[str, Any] = {}
    for i, ev in enumerate(evaluators):
        if ev.fast is not None and ev.kind == kind:
            if ev.fast(subject):
                continue
            log.info("%s Evaluator #%d rejected the request (%s)", name, i, ev.source)
            return i
        for var in ev.names:
            if var not in activation:
                make = values.get(var)
                if make is not None:
                    activation[var] = make(subject)
                elif var == "now":
                    activation[var] = _s(now())
        if not _passes(ev, activation):
            log.info("%s Evaluator #%d rejected the request (%s)", name, i, ev.source)
            return i
    return None


_CLAIMS: dict[str, Callable[[dict[str, Any]], Any]] = {"JWT": json_to_cel}


# -- the component ----------------------------------------------------------------------------

def _check_jwt_reachable(ctx: Build[CelConfig]) -> None:
    """A JWT expression only runs after auth/validator: elsewhere KrakenD never runs it."""
    if not ctx.config.jwt_paths or ctx.level is Level.PROXY:
        return
    if ctx.level is Level.ROUTER and ctx.endpoint is not None \
            and JWT_VALIDATOR in ctx.endpoint.extra_config:
        return
    where = "a backend" if ctx.level is Level.BACKEND else "an endpoint without auth/validator"
    raise ConfigValueError(f"a JWT expression in {where} is never evaluated (KrakenD "
                           "evaluates JWT expressions after auth/validator only)",
                           path=ctx.config.jwt_paths[0])


def build(ctx: Build[CelConfig], nxt: Any) -> Any:
    _check_jwt_reachable(ctx)
    cfg = ctx.config
    if ctx.level is Level.BACKEND:
        assert ctx.backend is not None
        return _backend(cfg, f"[BACKEND: {ctx.backend.url_pattern}][CEL]", nxt)
    assert ctx.endpoint is not None
    name = f"[ENDPOINT: {ctx.endpoint.endpoint}][CEL]"
    if ctx.level is Level.ROUTER:
        return _rejecter(cfg, name, nxt)
    return _proxy(cfg, name, nxt)


def _rejecter(cfg: CelConfig, name: str, nxt: EndpointHandler) -> EndpointHandler:
    """The JWT list on the claims auth/validator verified: 401, empty, as KrakenD's Rejecter.

    It runs right after the validator; KrakenD runs it inside, before the roles and scopes
    checks, so a token that fails both is a 403 here and a 401 there (rejected either way).
    """
    jwt = cfg.jwt
    if not jwt:
        return nxt
    rejecter = name + "[JWT]"

    async def rejecting(req: Request, route_params: dict[str, str]) -> Response:
        claims = req.jwt_claims
        if claims is None or evaluate(jwt, _CLAIMS, claims, rejecter) is not None:
            return Response(401)
        return await nxt(req, route_params)

    return rejecting


def _proxy(cfg: CelConfig, name: str, nxt: Proxy) -> Proxy:
    pre, post = cfg.pre, cfg.post
    if not pre and not post:
        return nxt
    pre_name, post_name = name + "[pre]", name + "[post]"

    async def checked(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        failed = evaluate(pre, _REQUEST, req, pre_name, PRE)
        if failed is not None:
            return None, Aborted(failed)
        resp, err = await nxt(req)
        if err is not None or resp is None or not post:
            return resp, err
        failed = evaluate(post, _RESPONSE, resp, post_name, POST)
        if failed is not None:
            return None, Aborted(failed)
        return resp, None

    return checked


def _backend(cfg: CelConfig, name: str, nxt: BackendProxy) -> BackendProxy:
    pre, post = cfg.pre, cfg.post
    if not pre and not post:
        return nxt
    pre_name, post_name = name + "[pre]", name + "[post]"

    async def checked(req: ProxyRequest) -> ProxyResponse:
        failed = evaluate(pre, _REQUEST, req, pre_name, PRE)
        if failed is not None:
            raise Aborted(failed)
        resp = await nxt(req)
        failed = evaluate(post, _RESPONSE, resp, post_name, POST)
        if failed is not None:
            raise Aborted(failed)
        return resp

    return checked


# KrakenD's schema (v2.13): a non-empty list of closed objects with check_expr only (mod_expr,
# which krakend-cel parses and never uses, is refused by its lint as by tidegate's).
SCHEMA: Mapping[str, Any] = array(closed(
    {"check_expr": {"type": "string", "description": "A CEL expression that must be true "
                    "(req_* before the call, resp_* after it, JWT on the verified claims)."}},
    "check_expr"), minItems=1, title="Common Expression Language (CEL) validations")

COMPONENT: Component[CelConfig] = Component(
    NAMESPACE, frozenset({Level.PROXY, Level.BACKEND}), build, parse=parse, schema=SCHEMA,
    order=15)
# The JWT list: inside auth/validator (order 40), so it sees the claims the validator set.
JWT_REJECTER: Component[CelConfig] = Component(
    NAMESPACE, frozenset({Level.ROUTER}), build, parse=parse, schema=SCHEMA, order=39)
