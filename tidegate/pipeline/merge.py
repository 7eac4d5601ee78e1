"""Merging several backends into one response (lura ``proxy/merging.go``).

Parallel: every backend is called at once; the answers are merged in backend order as they are
declared (later keys win), and the result is complete only when every backend answered
completely. Sequential: backends run in order, each may use fields of earlier answers
(``{resp0_field}``); the first failure stops the chain with a partial result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tidegate.pipeline.backend import BackendCall
from tidegate.pipeline.manipulation import merge_responses
from tidegate.pipeline.messages import BackendFailure, BackendTimeout, ProxyRequest, ProxyResponse

Result = tuple[ProxyResponse | None, BaseException | None]


class MergeError(BackendFailure):
    """Some backends failed; carries each error (the message joins them as lura does)."""

    def __init__(self, errors: Sequence[BaseException]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


def _result(parts: list[ProxyResponse], total: int, errors: list[BaseException]) -> Result:
    err = MergeError(errors) if errors else None
    if not parts:
        return None, err
    data = merge_responses([p.data for p in parts])
    complete = len(parts) == total and not errors and all(p.complete for p in parts)
    return ProxyResponse(data, complete), err


def merge_parallel(backends: list[BackendCall], timeout: float
                   ) -> Callable[[ProxyRequest], Awaitable[Result]]:
    """All backends at once; a backend still running when the endpoint times out is dropped."""
    total = len(backends)

    async def proxy(req: ProxyRequest) -> Result:
        tasks = [asyncio.ensure_future(b(req.clone())) for b in backends]
        try:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
        if pending:
            await asyncio.wait(pending)
        return _collect(tasks, total)

    return proxy


def _collect(tasks: list[asyncio.Future[ProxyResponse]], total: int) -> Result:
    parts: list[ProxyResponse] = []
    errors: list[BaseException] = []
    for t in tasks:
        if t.cancelled():
            errors.append(BackendTimeout())
            continue
        exc = t.exception()
        if exc is None:
            parts.append(t.result())
        elif isinstance(exc, BackendFailure):
            errors.append(exc)
        else:
            raise exc
    return _result(parts, total, errors)


def merge_sequential(backends: list[BackendCall], refs: list[list[tuple[str, str]]],
                     timeout: float) -> Callable[[ProxyRequest], Awaitable[Result]]:
    """Backends in order; ``{respN_a.b}`` takes field a.b of backend N's answer."""
    total = len(backends)

    async def proxy(req: ProxyRequest) -> Result:
        parts: list[ProxyResponse] = []
        try:
            async with asyncio.timeout(timeout):
                return await _chain(req.clone(), parts)
        except TimeoutError:
            if not parts:
                return None, BackendTimeout()
            return _result(parts, total, [BackendTimeout()])

    async def _chain(req: ProxyRequest, parts: list[ProxyResponse]) -> Result:
        for i, backend in enumerate(backends):
            for num, field in refs[i]:
                n = int(num)
                if n < len(parts):
                    value = _dig(parts[n].data, field)
                    if value is not None:
                        req.params[f"Resp{num}_{field}"] = _param_text(value)
            try:
                resp = await backend(req)
            except BackendFailure as exc:
                if i == 0:
                    return None, exc
                return _result(parts, total, [exc])
            parts.append(resp)
            if not resp.complete:
                break
        return _result(parts, total, [])

    return proxy


def _dig(data: dict[str, Any], dotted: str) -> Any:
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_param_text(v) for v in value)
    return str(value)
