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
from tidegate.pipeline.backend import BackendCall, CompiledBackend, FanOut
from tidegate.pipeline.manipulation import MergeAccumulator
from tidegate.upstream.client import Pending

Result = tuple[ProxyResponse | None, BaseException | None]
MergeProxy = Callable[[ProxyRequest], Awaitable[Result]]
# What a merged backend came to: a task's answer, a started exchange's (data, complete), what
# it raised; None before it arrived.
Outcome = ProxyResponse | tuple[Any, bool] | BaseException | None

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


class _Fan:
    """One parallel merge in flight: what each backend is awaited on (its started exchange, or
    a task), their outcomes in the order they arrived, and the future the request waits on,
    done once all have arrived or at the deadline.

    A backend that can start at once (`CompiledBackend.start`: an idle pooled connection, no
    component around its exchange) has its request written before the merge awaits anything,
    and its answer is checked and decoded in the done-callback of the exchange's future: no
    task, no coroutine per backend. The others, and what a started exchange must still await
    (a redirect, a retry on a fresh connection, gzip), run in a task as before.

    Methods of an object rather than closures over the request's locals: compiled by mypyc, a
    closure lives in an environment object that also holds the closure itself, a reference
    cycle per request (with every task, response and body it reaches) that only the cycle
    collector frees. Under load the garbage outlived the young generations and the full
    collections it caused stalled the worker (3-backend bench: p99 339 ms against 11 ms).
    """

    __slots__ = ("all_in", "arrived", "closed", "loop", "outcomes", "pending", "proxy", "waits")

    def __init__(self, proxy: _Parallel, loop: asyncio.AbstractEventLoop) -> None:
        total = proxy.total
        self.proxy = proxy
        self.loop = loop
        self.all_in: asyncio.Future[None] = loop.create_future()
        self.closed = False  # the merge took its answers: later arrivals are timeouts
        # Per backend: the future it is awaited on, its started exchange not yet answered,
        # its outcome (an answer or what it raised).
        self.waits: list[asyncio.Future[Any]] = []
        self.pending: list[Pending | None] = [None] * total
        self.outcomes: list[Outcome] = [None] * total
        self.arrived: list[int] = []

    def on_done(self, fut: asyncio.Future[Any]) -> None:
        if self.closed:
            return
        i = self.waits.index(fut)
        started = self.pending[i]
        outcome: Outcome
        if started is not None:
            self.pending[i] = None
            backend = self.proxy.calls[i][3]
            assert backend is not None
            outcome = _answer(backend, started)
            if outcome is None:  # more to await: in a task
                task = asyncio.Task(backend.rest(started), loop=self.loop,
                                    name=self.proxy.calls[i][2])
                self.waits[i] = task
                task.add_done_callback(self.on_done)
                return
        else:
            outcome = fut.exception()
            if outcome is None:
                outcome = fut.result()
        self.outcomes[i] = outcome
        self.arrived.append(i)
        if len(self.arrived) == len(self.waits) and not self.all_in.done():
            self.all_in.set_result(None)

    def expire(self) -> None:
        if not self.all_in.done():
            self.all_in.set_result(None)


def _answer(backend: CompiledBackend, started: Pending) -> Outcome:
    """A started exchange's outcome: its (data, complete), what it raised, or None when it
    needs a task.
    (Caught here, in a frame that holds nothing of the merge: a traceback keeps its frames.)"""
    try:
        return backend.answer(started)
    except BaseException as exc:
        return exc


def _calls(backends: Sequence[BackendCall]
           ) -> list[tuple[BackendCall, bool, str, CompiledBackend | None]]:
    """Each backend with whether it needs its own copy of the request (one whose components
    may change it does, as lura copies it per backend; a plain one only reads it), the
    name of its task, and the backend again when it may try to start without a task
    (`CompiledBackend.start`: a plain compiled one; decided here, once per generation)."""
    out = []
    for i, b in enumerate(backends):
        copy = not getattr(b, "keeps_request", False)
        starter = b if not copy and isinstance(b, CompiledBackend) else None
        out.append((b, copy, f"merged backend {i}", starter))
    return out


class _Parallel:
    """`merge_parallel`'s proxy: a bound method of this, no closure (see `_Fan`)."""

    __slots__ = ("calls", "loop", "timeout", "total")

    def __init__(self, backends: Sequence[BackendCall], timeout: float) -> None:
        self.total = len(backends)
        self.calls = _calls(backends)
        self.timeout = timeout
        self.loop: asyncio.AbstractEventLoop | None = None

    def _running(self) -> asyncio.AbstractEventLoop:
        """The running loop, kept (asyncio.get_running_loop() makes a getpid() system call
        on every call in CPython 3.11); replaced once it stops (tests run several loops)."""
        loop = self.loop
        if loop is None or not loop.is_running():
            loop = self.loop = asyncio.get_running_loop()
        return loop

    async def proxy(self, req: ProxyRequest) -> Result:
        loop = self._running()
        fan = _Fan(self, loop)
        waits = fan.waits
        on_done = fan.on_done
        # One future and one timer instead of asyncio.wait(): this runs on every request.
        timer = loop.call_later(self.timeout, fan.expire)
        try:
            # Inside the try: should a start raise, the backends already under way are
            # cancelled (their connections closed) by the finally below, never left running.
            fan_out = FanOut(req, loop.time())  # what each backend that starts reads of req
            for i, (b, copy, name, starter) in enumerate(self.calls):
                started = starter.start(req, loop, fan_out) if starter is not None else None
                if started is not None:
                    fan.pending[i] = started
                    waits.append(started.answer)
                    started.answer.add_done_callback(on_done)
                else:
                    # A Task made here with its name given: loop.create_task() would format a
                    # "Task-N" name for each (then replace it), a cost per backend and request.
                    t = asyncio.Task(b(req.clone() if copy else req), loop=loop, name=name)
                    waits.append(t)
                    t.add_done_callback(on_done)
            await fan.all_in
        finally:
            timer.cancel()
            fan.closed = True
            late: list[asyncio.Future[Any]] = []
            arrived = fan.arrived
            if len(arrived) < len(waits):
                for i, w in enumerate(waits):
                    if i in arrived:
                        continue
                    started = fan.pending[i]
                    if started is not None:
                        started.cancel()
                    else:
                        w.cancel()
                        late.append(w)
        if late:  # the tasks cut short end before the merge answers (connections closed)
            await asyncio.wait(late)
        acc = MergeAccumulator(self.total)
        errors: list[BaseException] = []
        answered = False
        outcomes = fan.outcomes
        for i in arrived:
            outcome = outcomes[i]
            if isinstance(outcome, tuple):  # a started exchange's (data, complete)
                acc.add(outcome[0], outcome[1])
                answered = True
            elif isinstance(outcome, ProxyResponse):
                acc.add(outcome.data, outcome.complete)
                answered = True
            elif isinstance(outcome, BackendFailure):
                acc.add_error()
                errors.append(outcome)
            elif outcome is not None:
                raise outcome
        for _ in range(self.total - len(arrived)):
            acc.add_error()
            errors.append(BackendTimeout())
        return _result(acc, answered, errors)


def merge_parallel(backends: Sequence[BackendCall], timeout: float) -> MergeProxy:
    """All backends at once; a backend still running at ``timeout`` counts as failed."""
    return _Parallel(backends, timeout).proxy


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
                for i, (backend, copy, _, _) in enumerate(calls):
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
