"""``validation/json-schema``: the request body must match the endpoint's JSON Schema.

KrakenD CE semantics: the section *is* the schema (any draft); an empty body answers 400
``could not validate an empty body``, a body that is not JSON 400 with the decoder's message, a
violation 400 with one ``- <error>`` line per problem (bodies only with return_error_msg, as
every backend error). The body is read whole (bounded) and handed on to the backends.

Unlike KrakenD, which logs an invalid schema and then serves *without* validation, tidegate
refuses the configuration with the location of the schema's problem: the check is never off.
The validator is built once per generation (compile); validation itself holds no state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import jsonschema
import jsonschema.exceptions
import orjson

from tidegate.bodies import BodyTooLarge
from tidegate.components.jsonschema_fast import compile_validator
from tidegate.components.jsonschema_onepass import compile_accepts
from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.errors import ConfigValueError
from tidegate.golang import json_values
from tidegate.golang.json_wire import JSONError
from tidegate.messages import BackendFailure, PayloadTooLarge, Proxy, ProxyRequest, ProxyResponse

NAMESPACE = "validation/json-schema"
BODY_LIMIT = 32 << 20  # a body to validate is held whole: bounded as every held body


class InvalidBody(BackendFailure):
    """The body does not validate: 400, with the reasons."""

    def __init__(self, reasons: str) -> None:
        super().__init__(reasons)
        # on the instance: a class-level override is lost where this module is compiled
        self.status = 400


def parse(raw: Any, path: JsonPath) -> jsonschema.protocols.Validator:
    """The compiled validator; a schema that is not valid is located at its problem."""
    if not isinstance(raw, dict | bool):
        raise ConfigValueError("expected a JSON Schema (an object)", path=path)
    cls = jsonschema.validators.validator_for(raw, default=jsonschema.Draft7Validator)
    try:
        cls.check_schema(raw)
    except jsonschema.exceptions.SchemaError as exc:
        raise ConfigValueError(f"not a valid JSON Schema ({cls.__name__}): {exc.message}",
                               path=(*path, *exc.path)) from None
    return cls(raw)


_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (list, "array"), (dict, "object"), (type(None), "null"))


def _json_type(value: Any) -> str:
    return next(name for typ, name in _JSON_TYPES if isinstance(value, typ))


def _describe(err: jsonschema.exceptions.ValidationError) -> str:
    """One problem as gojsonschema words it (KrakenD's texts) where it is the usual one."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    context = f"(root){where}"
    if err.validator == "type":
        expected = err.validator_value
        expected = ", ".join(expected) if isinstance(expected, list) else expected
        given = _json_type(err.instance)
        if given == "number" and float(err.instance).is_integer():
            given = "integer"
        return f"{context}: Invalid type. Expected: {expected}, given: {given}"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return f"{context}: {missing} is required"
    if err.validator == "additionalProperties":
        return f"{context}: {err.message}"
    return f"{context}: {err.message}"


def _report(errors: Iterable[jsonschema.exceptions.ValidationError]) -> str:
    return "\n".join(f"- {_describe(e)}" for e in errors)


Answer = tuple[ProxyResponse | None, BaseException | None]


async def _refused(err: BackendFailure) -> Answer:
    return None, err


def build(ctx: Build[jsonschema.protocols.Validator], nxt: Proxy) -> Proxy:
    validator = ctx.config
    # Valid bodies are decided by the compiled checks; jsonschema words the errors of the
    # others (and decides alone for a schema the compiler does not mirror).
    valid = compile_validator(validator)
    # Before them, for most bodies, a decode into msgspec types that checks as it reads: it
    # says only "valid" (when the usual way would), anything else goes the usual way.
    accepts = compile_accepts(validator)

    def problem(body: bytes) -> InvalidBody | None:
        """Why `body` does not validate, or None."""
        if accepts is not None and accepts(body):
            return None
        return refusal(body)

    def refusal(body: bytes) -> InvalidBody | None:
        """Why `body`, which the one-pass decode did not take, does not validate, or None."""
        if not body:
            return InvalidBody("could not validate an empty body")
        try:
            data = orjson.loads(body)  # integers stay integers in the messages
        except orjson.JSONDecodeError:
            try:  # Go's decoder has the last word (and its error text is KrakenD's)
                data = json_values.decode(body)
            except JSONError as exc:
                return InvalidBody(str(exc))
            # its values are not only orjson's plain types: jsonschema decides
            errors = list(validator.iter_errors(data))
        else:
            if valid is not None and valid(data):
                return None
            errors = list(validator.iter_errors(data))
        return InvalidBody(_report(errors)) if errors else None

    async def read_first(req: ProxyRequest) -> Answer:
        """A body still arriving is read whole (bounded), then validated."""
        assert req.stream is not None
        try:
            req.body = await req.stream.read_all(BODY_LIMIT)
        except BodyTooLarge:
            return None, PayloadTooLarge()
        req.stream = None
        failed = problem(req.body)
        if failed is not None:
            return None, failed
        return await nxt(req)

    def check(req: ProxyRequest) -> Awaitable[Answer] | None:
        """None for a request that goes on to `nxt` as it is; else the stage's answer."""
        if req.stream is not None:
            return read_first(req)
        body = req.body
        if accepts is not None and accepts(body):  # the usual case, without `problem`'s frame
            return None
        failed = refusal(body)
        if failed is not None:
            return _refused(failed)
        return None

    return CheckedProxy(check, nxt)


class CheckedProxy:
    """A proxy stage that only checks the request before the next one: a valid request is
    the next stage's awaitable itself (no frame of its own). It offers the endpoint
    `check_before`, (check, next), so that an endpoint whose next stage is its lone
    backend's call can run the check and then await that backend as it does without
    components (`pipeline.endpoint`)."""

    def __init__(self, check: Callable[[ProxyRequest], Awaitable[Answer] | None],
                 nxt: Proxy) -> None:
        self.check = check
        self.nxt = nxt
        self.check_before = (check, nxt)

    def __call__(self, req: ProxyRequest) -> Awaitable[Answer]:
        pending = self.check(req)
        return self.nxt(req) if pending is None else pending


COMPONENT: Component[jsonschema.protocols.Validator] = Component(
    NAMESPACE, frozenset({Level.PROXY}), build, parse=parse, order=10)
