"""Merging several backends into one response (lura ``proxy/merging.go``).

Both mergers get 85 % of the endpoint timeout (lura keeps the rest to render a partial answer)
and fold answers with lura's incremental accumulator: a shallow merge where a later answer's
keys overwrite an earlier one's; the result is complete only when every backend answered
completely; no answer at all is an error (500), some answers are a partial 200.

Parallel: every backend at once, merged in **arrival order**, as lura does. Declaration order
would be deterministic, but where KrakenD's answer is deterministic too (one backend always
slower, both sending the same key: the slower one wins) it would give a different body; where
lura's order is a race, arrival order is one of the answers KrakenD can give. The cost is one
done-callback per backend.

Sequential: backends in order, each may use fields of earlier answers in its url_pattern
(``{resp0_a.b}``) and, through ``sequential_propagated_params``, as request params for
components. A failing first backend is the endpoint's error as is; a later failure stops the
chain with a partial result.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tidegate.golang.sprint import sprint_json_numbers
from tidegate.messages import (
    BackendFailure,
    BackendTimeout,
    MergeError,
    ProxyRequest,
    ProxyResponse,
)
from tidegate.pipeline.backend import BackendCall
from tidegate.pipeline.manipulation import MergeAccumulator

Result = tuple[ProxyResponse | None, BaseException | None]
MergeProxy = Callable[[ProxyRequest], Awaitable[Result]]

# lura: the merge gets 85 % of the endpoint timeout.
MERGE_SHARE = 0.85
_URL_REF = re.compile(r"^resp(\d+)_([\w\-.]+)$")
_PROPAGATED_REF = re.compile(r"[Rr]esp(\d+)_?([\w\-.]+)?")

__all__ = ["MergeError", "Replacement", "merge_parallel", "merge_sequential",
           "sequential_replacements"]


def _result(acc: MergeAccumulator, answered: bool, errors: list[BaseException]) -> Result:
    err = MergeError(errors) if errors else None
    if not answered:
        return None, err
    data, complete = acc.result()
    return ProxyResponse(data, complete), err


class _Arrivals:
    """One parallel merge in flight: its backends' tasks in the order they finished, and the
    future the request waits on, done once all have finished or at the deadline.

    Methods of an object rather than closures over the request's locals: compiled by mypyc, a
    closure lives in an environment object that also holds the closure itself, a reference
    cycle per request (with every task, response and body it reaches) that only the cycle
    collector frees. Under load the garbage outlived the young generations and the full
    collections it caused stalled the worker (3-backend bench: p99 339 ms against 11 ms).
    """

    __slots__ = ("all_in", "arrived", "total")

    def __init__(self, total: int, all_in: asyncio.Future[None]) -> None:
        self.total = total
        self.all_in = all_in
        self.arrived: list[asyncio.Future[ProxyResponse]] = []

    def on_done(self, task: asyncio.Future[ProxyResponse]) -> None:
        self.arrived.append(task)
        if len(self.arrived) == self.total and not self.all_in.done():
            self.all_in.set_result(None)

    def expire(self) -> None:
        if not self.all_in.done():
            self.all_in.set_result(None)


def _calls(backends: Sequence[BackendCall]) -> list[tuple[BackendCall, bool, str]]:
    """Each backend with whether it needs its own copy of the request (one whose components
    may change it does, as lura copies it per backend; a plain one only reads it) and the
    name of its task."""
    return [(b, not getattr(b, "keeps_request", False), f"merged backend {i}")
            for i, b in enumerate(backends)]


def merge_parallel(backends: Sequence[BackendCall], timeout: float) -> MergeProxy:
    """All backends at once; a backend still running at ``timeout`` counts as failed."""
    total = len(backends)
    calls = _calls(backends)

    async def proxy(req: ProxyRequest) -> Result:
        loop = asyncio.get_running_loop()
        state = _Arrivals(total, loop.create_future())
        tasks: list[asyncio.Task[ProxyResponse]] = []
        for b, copy, name in calls:
            # A Task made here with its name given: loop.create_task() would format a
            # "Task-N" name for each (then replace it), a cost per backend and request.
            t = asyncio.Task(b(req.clone() if copy else req), loop=loop, name=name)
            t.add_done_callback(state.on_done)
            tasks.append(t)
        # One future and one timer instead of asyncio.wait(): this runs on every request.
        timer = loop.call_later(timeout, state.expire)
        try:
            await state.all_in
        finally:
            timer.cancel()
            for t in tasks:
                if not t.done():
                    t.cancel()
        arrived = state.arrived
        pending = [t for t in tasks if t not in arrived]
        done = arrived[:]  # snapshot: cancelled ones arrive later and count as timeouts
        if pending:
            await asyncio.wait(pending)
        acc = MergeAccumulator(total)
        errors: list[BaseException] = []
        answered = False
        for fut in done:
            exc = fut.exception()
            if exc is None:
                resp = fut.result()
                acc.add(resp.data, resp.complete)
                answered = True
            elif isinstance(exc, BackendFailure):
                acc.add_error()
                errors.append(exc)
            else:
                raise exc
        for _ in pending:
            acc.add_error()
            errors.append(BackendTimeout())
        return _result(acc, answered, errors)

    return proxy


@dataclass(frozen=True, slots=True)
class Replacement:
    """One param a sequential backend takes from an earlier answer (lura's
    sequentialBackendReplacement): ``Resp0_a.b`` ← field ``a.b`` of backend 0."""

    index: int
    destination: str
    source: tuple[str, ...]
    full_response: bool


def sequential_replacements(url_patterns: Sequence[str], propagated: Iterable[str],
                            placeholders: Callable[[str], Iterable[str]]
                            ) -> list[list[Replacement]]:
    """lura's ``sequentialMergerConfig``: per backend, the params it takes from earlier ones."""
    total = len(url_patterns)
    props = list(propagated)
    out: list[list[Replacement]] = [[] for _ in url_patterns]
    for i, pattern in enumerate(url_patterns):
        for name in placeholders(pattern):
            m = _URL_REF.match(name)
            if m:
                out[i].append(_replacement(m.group(1), m.group(2)))
        if i == 0:
            continue
        for p in props:
            for m in _PROPAGATED_REF.finditer(p):
                if int(m.group(1)) < total:
                    out[i].append(_replacement(m.group(1), m.group(2) or ""))
    return out


def _replacement(index: str, field: str) -> Replacement:
    dest = f"Resp{index}_{field}" if field else f"Resp{index}"
    return Replacement(int(index), dest, tuple(field.split(".")), field == "")


def merge_sequential(backends: Sequence[BackendCall], replacements: list[list[Replacement]],
                     timeout: float) -> MergeProxy:
    """Backends in order; each takes its replacements from the answers before it."""
    total = len(backends)
    calls = _calls(backends)

    async def proxy(req: ProxyRequest) -> Result:
        req = req.clone()
        acc = MergeAccumulator(total)
        errors: list[BaseException] = []
        parts: list[ProxyResponse | None] = [None] * total
        found: dict[str, str] = {}
        answered = False
        i = 0
        try:
            async with asyncio.timeout(timeout):
                for i, (backend, copy, _) in enumerate(calls):
                    if i:
                        _apply(replacements[i], i, parts, req.params, found)
                    try:
                        # A backend that only reads the request may see the params change
                        # after it answered: it is done with them by then.
                        resp = await backend(req.clone() if copy else req)
                    except BackendFailure as exc:
                        if i == 0:
                            return None, exc
                        acc.add_error()
                        errors.append(exc)
                        break
                    acc.add(resp.data, resp.complete)
                    answered = True
                    if not resp.complete:
                        break
                    parts[i] = resp
        except TimeoutError:
            if i == 0:
                return None, BackendTimeout()
            acc.add_error()
            errors.append(BackendTimeout())
        return _result(acc, answered, errors)

    return proxy


def _apply(reps: list[Replacement], i: int, parts: list[ProxyResponse | None],
           params: dict[str, str], found: dict[str, str]) -> None:
    """Fill ``params`` as lura's sequential merger does, quirks included."""
    for r in reps:
        part = parts[r.index] if r.index < i else None
        if part is None:
            continue
        cached = found.get(r.destination)
        if cached:
            params[r.destination] = cached
            continue
        if r.full_response:
            if part.raw is not None:  # only no-op answers keep their body
                params[r.destination] = found[r.destination] = part.raw.decode(
                    "utf-8", "surrogateescape")
            continue
        data: Any = part.data or {}
        # lura walks the dotted path through objects and stops (without failing) at the first
        # missing or non-object step, then looks the last key up where it stopped.
        for key in r.source[:-1]:
            value = data.get(key, _MISSING)
            if not isinstance(value, dict):
                break
            data = value
        value = data.get(r.source[-1], _MISSING)
        if value is _MISSING:
            continue
        text = (",".join(sprint_json_numbers(v) for v in value) if isinstance(value, list)
                else sprint_json_numbers(value))
        params[r.destination] = found[r.destination] = text


_MISSING = object()
