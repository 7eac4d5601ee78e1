"""qos/circuit-breaker and qos/ratelimit/proxy: what a client and the backend see."""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.carryover import assert_carry_over
from tests.support import backend, free_port, gateway, request, write_config
from tidegate.components.breaker import (
    NAMESPACE,
    Breaker,
    BreakerOpen,
    State,
    TooManyCalls,
    parse,
)
from tidegate.components.ratelimit_proxy import NAMESPACE as PROXY_LIMIT
from tidegate.components.ratelimit_proxy import parse as parse_proxy_limit
from tidegate.errors import ConfigValueError

HITS: Counter[str] = Counter()
HITS_LOCK = threading.Lock()


RELEASE = threading.Event()  # what /hang waits for (set when its test ends)


class FailingHandler(BaseHTTPRequestHandler):
    """A backend that answers /fail with 500 and /ok with JSON, counting every hit; /hang
    answers only once its test is over."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        with HITS_LOCK:
            HITS[self.path] += 1
        if self.path.startswith("/hang"):
            RELEASE.wait(30)
        code, body = (500, b"down") if self.path.startswith("/fail") else (200, b'{"ok":1}')
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _config(bport: int, section: dict[str, Any], *, path: str = "/fail",
            encoding: str = "json", namespace: str = NAMESPACE) -> dict[str, Any]:
    return {"version": 3, "extra_config": {"router": {"return_error_msg": True}},
            "endpoints": [{"endpoint": "/guarded", "output_encoding": encoding, "backend": [
                {"host": [f"http://127.0.0.1:{bport}"], "url_pattern": path,
                 "encoding": encoding, "extra_config": {namespace: section}}]}]}


@pytest.fixture(autouse=True)
def _hits() -> None:
    HITS.clear()


@pytest.mark.parametrize("encoding", ["json", "no-op"])
def test_the_breaker_opens_and_spares_the_backend(tmp_path: Path, encoding: str) -> None:
    """max_errors 1: two failures trip it; then calls fail at once, the backend is not hit.
    With no-op too (KrakenD's breaker never trips on no-op status codes: krakend-ce#895)."""
    with backend(FailingHandler) as bport:
        path = tmp_path / "krakend.json"
        write_config(path, _config(bport, {"max_errors": 1, "timeout": 60,
                                           "log_status_change": True, "name": "cb-fail"},
                                   encoding=encoding))
        port = free_port()
        with gateway(str(path), port) as gw:
            answers = [request(port, "GET", "/guarded") for _ in range(5)]
            gw.wait_for("[CB] Circuit breaker named 'cb-fail' went from 'closed' to 'open'")
    assert HITS["/fail"] == 2
    assert [a[0] for a in answers] == [500] * 5
    assert all(a[2] == b"circuit breaker is open" for a in answers[2:])


def test_a_backend_timeout_counts_as_a_failure(tmp_path: Path) -> None:
    """A call that runs out of time is a failure for the breaker, as gobreaker counts the
    deadline error KrakenD's call returns: max_errors 0 opens it, and the next call fails at
    once without reaching the backend."""
    RELEASE.clear()
    with backend(FailingHandler) as bport:
        path = tmp_path / "krakend.json"
        config = _config(bport, {"max_errors": 0, "timeout": 60}, path="/hang")
        config["endpoints"][0]["timeout"] = "300ms"
        write_config(path, config)
        port = free_port()
        try:
            with gateway(str(path), port):
                answers = [request(port, "GET", "/guarded") for _ in range(2)]
        finally:
            RELEASE.set()
    assert [a[0] for a in answers] == [500, 500]
    assert answers[1][2] == b"circuit breaker is open"
    assert HITS["/hang"] == 1


def test_an_endpoint_without_failures_never_trips(tmp_path: Path) -> None:
    with backend(FailingHandler) as bport:
        path = tmp_path / "krakend.json"
        write_config(path, _config(bport, {"max_errors": 0, "timeout": 60}, path="/ok"))
        port = free_port()
        with gateway(str(path), port):
            assert [request(port, "GET", "/guarded")[0] for _ in range(5)] == [200] * 5
    assert HITS["/ok"] == 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(**section: Any) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(parse(section, ()), "b", clock), clock


def test_state_table_is_gobreakers(caplog: pytest.LogCaptureFixture) -> None:
    b, clock = _breaker(max_errors=2, timeout=10, log_status_change=True)
    for _ in range(3):
        b.after(b.before(), False)
    assert b.state is State.OPEN
    with pytest.raises(BreakerOpen, match="circuit breaker is open"):
        b.before()
    clock.now += 10.5  # past the timeout: one trial call
    trial = b.before()
    assert b.state is State.HALF_OPEN
    with pytest.raises(TooManyCalls, match="too many requests"):
        b.before()
    b.after(trial, False)  # the trial failed: open again, for another timeout
    assert b.state is State.OPEN
    clock.now += 10.5
    b.after(b.before(), True)
    assert b.state is State.CLOSED
    changes = [r.getMessage() for r in caplog.records if "[CB]" in r.getMessage()]
    assert changes == [
        "[CB] Circuit breaker named 'b' went from 'closed' to 'open'",
        "[CB] Circuit breaker named 'b' went from 'open' to 'half-open'",
        "[CB] Circuit breaker named 'b' went from 'half-open' to 'open'",
        "[CB] Circuit breaker named 'b' went from 'open' to 'half-open'",
        "[CB] Circuit breaker named 'b' went from 'half-open' to 'closed'"]


def test_only_consecutive_failures_count_and_the_interval_forgets() -> None:
    b, clock = _breaker(max_errors=1, interval=5)
    b.after(b.before(), False)
    b.after(b.before(), True)   # a success in between: the count restarts
    b.after(b.before(), False)
    assert b.state is State.CLOSED
    clock.now += 6              # the interval passed: counts forgotten
    b.after(b.before(), False)
    assert b.state is State.CLOSED
    b.after(b.before(), False)
    assert b.state is State.OPEN
    # timeout 0 is gobreaker's 60 s
    b2, clock2 = _breaker(max_errors=0)
    b2.after(b2.before(), False)
    clock2.now += 59
    with pytest.raises(BreakerOpen):
        b2.before()
    clock2.now += 2
    b2.before()
    assert b2.state is State.HALF_OPEN


def test_a_late_outcome_of_an_old_generation_is_ignored() -> None:
    b, _clock = _breaker(max_errors=0, timeout=1)
    slow = b.before()
    b.after(b.before(), False)   # trips while `slow` is out
    b.after(slow, True)          # its success belongs to a past generation
    assert b.state is State.OPEN


def test_cancelled_calls_give_their_half_open_slot_back() -> None:
    b, clock = _breaker(max_errors=0, timeout=1)
    b.after(b.before(), False)
    clock.now += 2
    b.excluded(b.before())
    b.before()  # the slot is free again


def test_an_all_zero_section_configures_no_breaker() -> None:
    assert parse({}, ()).zero and parse({"max_errors": 0}, ()).zero
    assert not parse({"name": "x"}, ()).zero


def test_breaker_passes_the_carry_over_contract() -> None:
    def config(section: dict[str, Any] | None) -> dict[str, Any]:
        eps = [] if section is None else _config(9, section)["endpoints"]
        return {"version": 3, "endpoints": eps or [
            {"endpoint": "/x", "backend": [{"host": ["http://127.0.0.1:9"],
                                            "url_pattern": "/x"}]}]}
    assert_carry_over(NAMESPACE, config=config, section={"max_errors": 1},
                      changed={"max_errors": 2})


@pytest.mark.parametrize(("section", "key"), [
    ({"max_errors": -1}, "max_errors"), ({"timeout": "10s"}, "timeout"),
    ({"name": 3}, "name"), ({"log_status_change": "yes"}, "log_status_change")])
def test_bad_breaker_sections_are_located(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigValueError) as info:
        parse(section, ("endpoints", 0, "backend", 0, "extra_config", NAMESPACE))
    assert info.value.path[-1] == key


def test_backend_rate_limit_fails_the_call_as_krakend(tmp_path: Path) -> None:
    with backend(FailingHandler) as bport:
        path = tmp_path / "krakend.json"
        write_config(path, _config(bport, {"max_rate": 1, "every": "1h", "capacity": 2},
                                   path="/ok", namespace=PROXY_LIMIT))
        port = free_port()
        with gateway(str(path), port, workers=2):
            answers = [request(port, "GET", "/guarded") for _ in range(4)]
    assert [a[0] for a in answers] == [200, 200, 500, 500]
    assert answers[3][2] == b"rate limit exceded"
    assert HITS["/ok"] == 2


def test_backend_rate_limit_defaults() -> None:
    cfg = parse_proxy_limit({"max_rate": 10, "every": "100ms"}, ())
    assert (cfg.rate, cfg.capacity) == (100, 100)  # no 1s minimum at this level
    assert parse_proxy_limit({"max_rate": 0.5}, ()).capacity == 1
    with pytest.raises(ConfigValueError) as info:
        parse_proxy_limit({"max_rate": 1, "every": "0s"}, ("b",))
    assert info.value.path == ("b", "every")


def test_backend_rate_limit_passes_the_carry_over_contract() -> None:
    def config(section: dict[str, Any] | None) -> dict[str, Any]:
        if section is None:
            return {"version": 3, "endpoints": [{"endpoint": "/x", "backend": [
                {"host": ["http://127.0.0.1:9"], "url_pattern": "/x"}]}]}
        return _config(9, section, namespace=PROXY_LIMIT)
    assert_carry_over(PROXY_LIMIT, config=config, section={"max_rate": 5},
                      changed={"max_rate": 6})

