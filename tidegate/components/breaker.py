"""``qos/circuit-breaker``: stop calling a backend that keeps failing, as KrakenD's gobreaker.

The state table is sony/gobreaker v2's, with krakend-circuitbreaker's settings: the breaker
trips when *consecutive* failures exceed ``max_errors``; while closed, counts restart every
``interval`` seconds (0: never); once open, every call fails at once with ``circuit breaker is
open`` for ``timeout`` seconds (0: gobreaker's 60 s), then one call is let through (half-open:
others get ``too many requests``); its success closes the breaker, its failure opens it again.
``log_status_change`` logs each change as KrakenD does. A section whose values are all zero
configures no breaker (krakend-circuitbreaker's ``ZeroCfg``).

A failure is any backend failure (refused, timeout, a status the encoding rejects...) and,
unlike KrakenD (krakend-ce#895), a 5xx answer whatever the encoding, so a ``no-op`` backend's
breaker trips on status codes too. A cancelled call counts for nothing.

The breaker is per worker (decision 33) and kept across reloads while its section and the
backend it guards (hosts, method, url_pattern) are unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from tidegate.components.seam import Build, Component, JsonPath, Level
from tidegate.errors import ConfigValueError
from tidegate.messages import BackendFailure, BackendProxy, ProxyRequest, ProxyResponse

NAMESPACE = "qos/circuit-breaker"
DEFAULT_TIMEOUT = 60.0
HALF_OPEN_CALLS = 1  # gobreaker's MaxRequests as KrakenD leaves it (0 → 1)

log = logging.getLogger("tidegate.breaker")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "qos/circuit-breaker: stop calling a failing backend for a while",
    "properties": {
        "interval": {"type": "integer", "minimum": 0,
                     "description": "seconds after which a closed breaker forgets its counts"},
        "timeout": {"type": "integer", "minimum": 0,
                    "description": "seconds the breaker stays open (0: 60)"},
        "max_errors": {"type": "integer", "minimum": 0,
                       "description": "consecutive failures tolerated; one more trips it"},
        "name": {"type": "string"},
        "log_status_change": {"type": "boolean"},
    },
    "patternProperties": {"^[@$_#]": True},
    "additionalProperties": False,
}


class State(Enum):
    """gobreaker's states, with its names (they appear in the log line)."""

    CLOSED = "closed"
    HALF_OPEN = "half-open"
    OPEN = "open"


class BreakerOpen(BackendFailure):
    """The breaker is open: the backend is not called."""

    def __init__(self) -> None:
        super().__init__("circuit breaker is open")


class TooManyCalls(BackendFailure):
    """Half-open, and the one trial call is already out."""

    def __init__(self) -> None:
        super().__init__("too many requests")


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    name: str
    interval: float
    timeout: float
    max_errors: int
    log_status_change: bool

    @property
    def zero(self) -> bool:
        """krakend-circuitbreaker configures nothing for an all-zero section."""
        return not (self.name or self.interval or self.timeout or self.max_errors
                    or self.log_status_change)


def _seconds(raw: dict[str, Any], key: str, path: JsonPath) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigValueError(f"{key}: expected a number of seconds (an integer ≥ 0), "
                               f"got {value!r}", path=(*path, key))
    return int(value)


def parse(raw: Any, path: JsonPath) -> BreakerConfig:
    """The typed section; errors located at the key."""
    if not isinstance(raw, dict):
        raise ConfigValueError("expected an object", path=path)
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise ConfigValueError(f"name: expected a string, got {name!r}", path=(*path, "name"))
    log_change = raw.get("log_status_change", False)
    if not isinstance(log_change, bool):
        raise ConfigValueError(f"log_status_change: expected true or false, got "
                               f"{log_change!r}", path=(*path, "log_status_change"))
    return BreakerConfig(name, float(_seconds(raw, "interval", path)),
                         float(_seconds(raw, "timeout", path)),
                         _seconds(raw, "max_errors", path), log_change)


class Breaker:
    """gobreaker's state machine (one per backend definition and worker)."""

    def __init__(self, cfg: BreakerConfig, name: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.name = name
        self.clock = clock
        self.timeout = cfg.timeout if cfg.timeout > 0 else DEFAULT_TIMEOUT
        self.state = State.CLOSED
        self.generation = 0
        self.requests = 0
        self.consecutive_failures = 0
        self.consecutive_successes = 0
        self.expiry = 0.0
        self._new_generation(clock())

    def _new_generation(self, now: float) -> None:
        self.generation += 1
        self.requests = self.consecutive_failures = self.consecutive_successes = 0
        if self.state is State.CLOSED:
            self.expiry = now + self.cfg.interval if self.cfg.interval > 0 else 0.0
        elif self.state is State.OPEN:
            self.expiry = now + self.timeout
        else:
            self.expiry = 0.0

    def _set(self, state: State, now: float) -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        self._new_generation(now)
        if self.cfg.log_status_change:
            log.warning("[CB] Circuit breaker named '%s' went from '%s' to '%s'",
                        self.name, previous.value, state.value)

    def current(self, now: float) -> State:
        """The state at `now` (an expired interval or timeout moves it on)."""
        if self.state is State.CLOSED:
            if self.expiry and self.expiry < now:
                self._new_generation(now)
        elif self.state is State.OPEN and self.expiry < now:
            self._set(State.HALF_OPEN, now)
        return self.state

    def before(self) -> int:
        """Admit a call (its generation) or raise the failure that replaces it."""
        state = self.current(self.clock())
        if state is State.OPEN:
            raise BreakerOpen()
        if state is State.HALF_OPEN and self.requests >= HALF_OPEN_CALLS:
            raise TooManyCalls()
        self.requests += 1
        return self.generation

    def excluded(self, generation: int) -> None:
        """A call that ended without an outcome gives its slot back (gobreaker's exclusion)."""
        if generation == self.generation and self.requests > 0:
            self.requests -= 1

    def after(self, generation: int, success: bool) -> None:
        """Count a call's outcome (ignored if the breaker changed generation meanwhile)."""
        now = self.clock()
        state = self.current(now)
        if generation != self.generation:
            return
        if success:
            self.consecutive_failures = 0
            self.consecutive_successes += 1
            if state is State.HALF_OPEN and self.consecutive_successes >= HALF_OPEN_CALLS:
                self._set(State.CLOSED, now)
        elif state is State.CLOSED:
            self.consecutive_successes = 0
            self.consecutive_failures += 1
            if self.consecutive_failures > self.cfg.max_errors:
                self._set(State.OPEN, now)
        elif state is State.HALF_OPEN:
            self._set(State.OPEN, now)


def _failed(resp: ProxyResponse, no_op: bool) -> bool:
    """A response the breaker counts as a failure: 5xx always, other rejected statuses for
    the encodings that reject them (those raise before they get here today)."""
    return resp.status >= 500 or (not no_op and resp.status not in (200, 201))


def build(ctx: Build[BreakerConfig], nxt: BackendProxy) -> BackendProxy:
    cfg = ctx.config
    if cfg.zero:
        return nxt
    backend = ctx.backend
    guarded = ({"hosts": list(backend.host), "method": backend.method,
                "url_pattern": backend.url_pattern} if backend is not None else {})
    name = cfg.name or ctx.scope
    lease = ctx.state({"section": asdict(cfg), "backend": guarded},
                      lambda: Breaker(cfg, name))
    no_op = backend is not None and backend.encoding == "no-op"

    async def guarded_call(req: ProxyRequest) -> ProxyResponse:
        breaker = lease.value
        generation = breaker.before()
        try:
            resp = await nxt(req)
        except asyncio.CancelledError:  # the client left: neither success nor failure
            breaker.excluded(generation)
            raise
        except BaseException:
            breaker.after(generation, False)
            raise
        breaker.after(generation, not _failed(resp, no_op))
        return resp

    return guarded_call


# bounded: it awaits only the call it guards (whose deadline is the backend's).
COMPONENT: Component[BreakerConfig] = Component(NAMESPACE, frozenset({Level.BACKEND}), build,
                                                parse=parse, schema=SCHEMA, order=40,
                                                bounded=True)
