"""The component seam's life cycle and the state that outlives generations."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from tests.carryover import assert_carry_over
from tests.test_pipeline_support import Gateway, backend_cfg, endpoint, run, service
from tidegate.components import DEFAULT_REGISTRY, Build, Component, Level
from tidegate.messages import Request, Response, ServiceHandler
from tidegate.state import LocalBuckets, SharedBuckets, StateStore

NS = "test/seam"
events: list[str] = []


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    events.clear()
    yield
    DEFAULT_REGISTRY.remove(NS)


def preflight(ctx: Build[Any], nxt: ServiceHandler) -> ServiceHandler:
    """A service-level component: answers OPTIONS itself, tags every other answer."""
    async def handle(req: Request) -> Response:
        if req.method == "OPTIONS":
            return Response(204, [("X-Seen", "preflight")])
        resp = await nxt(req)
        resp.headers.append(("X-Seen", str(resp.status)))
        return resp
    return handle


def test_service_level_runs_before_routing() -> None:
    """An OPTIONS preflight to a GET-only endpoint reaches the component (not 405), and the
    component sees the router's 404 and 405 answers."""
    DEFAULT_REGISTRY.add(Component(NS, frozenset({Level.SERVICE}), preflight))

    async def scenario() -> list[tuple[int, str | None]]:
        gw = Gateway(service(endpoint("/a", backend_cfg("http://127.0.0.1:9", "/a")),
                             extra_config={NS: {}}, return_error_msg=False))
        try:
            out = []
            for method, path in (("OPTIONS", "/a"), ("GET", "/nowhere"), ("POST", "/a")):
                ans = await gw.get(path, method=method)
                out.append((ans.status, ans.headers.get("x-seen")))
            return out
        finally:
            await gw.close()

    assert run(scenario()) == [(204, "preflight"), (404, "404"), (405, "405")]


class Counter:
    """State a test component keeps: requests seen, and whether it was closed."""

    def __init__(self) -> None:
        self.seen = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True
        events.append("state closed")


def counting(ctx: Build[dict[str, Any]], nxt: Any) -> Any:
    lease = ctx.state(ctx.config.get("limit"), Counter)
    ctx.on_provision(lambda: events.append(f"provision {ctx.scope}"))
    ctx.on_close(lambda: events.append(f"close {ctx.scope} first"))

    async def failing_close() -> None:
        events.append(f"close {ctx.scope} fails")
        raise RuntimeError("boom")

    ctx.on_close(failing_close)

    async def handle(req: Request, params: dict[str, str]) -> Response:
        lease.value.seen += 1
        return Response(200, [("X-Seen", str(lease.value.seen))])
    return handle


def _counted(section: dict[str, Any] | None) -> dict[str, Any]:
    eps = [endpoint("/plain", backend_cfg("http://127.0.0.1:9", "/p"))]
    if section is not None:
        eps.append(endpoint("/counted", backend_cfg("http://127.0.0.1:9", "/c"),
                            extra_config={NS: section}))
    return {"version": 3, **service(*eps)}


def test_life_cycle_compile_provision_close(caplog: pytest.LogCaptureFixture) -> None:
    DEFAULT_REGISTRY.add(Component(NS, frozenset({Level.ROUTER}), counting))

    async def scenario() -> None:
        store = StateStore()
        gw = Gateway(_counted({"limit": 1}), store)
        assert events == [] and store.held() == []  # compiling is pure
        ans = [await gw.get("/counted") for _ in range(2)]
        assert [a.headers["x-seen"] for a in ans] == ["1", "2"]
        assert events == ["provision GET /counted"]
        await gw.close()

    with caplog.at_level(logging.ERROR, "tidegate.components"):
        run(scenario())
    # Reverse order; a failing close is logged and does not stop the others or the release.
    assert events[1:] == ["close GET /counted fails", "close GET /counted first",
                          "state closed"]
    assert "closing a component failed" in caplog.text


def test_counter_state_passes_the_carry_over_contract() -> None:
    DEFAULT_REGISTRY.add(Component(NS, frozenset({Level.ROUTER}), counting))
    assert_carry_over(NS, config=_counted, section={"limit": 1}, changed={"limit": 2})


def test_a_failing_provision_releases_what_it_leased() -> None:
    def broken(ctx: Build[Any], nxt: Any) -> Any:
        ctx.state("x", Counter)

        def fail() -> None:
            raise OSError("cannot open the client")
        ctx.on_provision(fail)
        return nxt

    DEFAULT_REGISTRY.add(Component(NS, frozenset({Level.ROUTER}), broken))

    async def scenario() -> StateStore:
        store = StateStore()
        gw = Gateway(_counted({}), store)
        with pytest.raises(OSError, match="cannot open"):
            await gw.gen.provision(store)
        return store

    store = run(scenario())
    assert store.held() == [] and events == ["state closed"]


def test_state_outlives_a_reload_in_a_real_store() -> None:
    """Reference counting: two generations hold one entry; the last release closes it."""
    store = StateStore()
    made: list[Counter] = []

    def create() -> Counter:
        made.append(Counter())
        return made[-1]

    key = (NS, "GET /a", "f1")
    assert store.lease(key, create) is store.lease(key, create)
    assert len(made) == 1 and store.refs(key) == 2
    store.release(key)
    assert not made[0].closed
    store.release(key)
    assert made[0].closed and store.held() == []
    with pytest.raises(KeyError):
        store.release(key)


def test_local_buckets_refill_continuously() -> None:
    buckets = LocalBuckets()
    taken = [buckets.take("k", rate=1000.0, capacity=2.0) for _ in range(3)]
    assert [t.allowed for t in taken] == [True, True, False]
    assert 0 < taken[2].retry_after <= 0.001
    # 1000 tokens/s: within a few milliseconds the bucket has refilled.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()
    assert buckets.take("k", rate=1000.0, capacity=2.0).allowed


CHILD = textwrap.dedent("""
    import sys
    from tidegate.state import SharedBuckets
    table = SharedBuckets(int(sys.argv[1]))
    allowed = sum(table.take("GET /limited", rate=0.001, capacity=30.0).allowed
                  for _ in range(50))
    print(allowed)
""")


def test_shared_buckets_are_one_limit_for_every_process_of_the_node() -> None:
    """Two worker-like processes take from one bucket: together they get its capacity, not
    twice it (a limit per node, whatever the worker count)."""
    table = SharedBuckets.create(slots=1024)
    try:
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(table.fd)],
                                  pass_fds=(table.fd,), stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
        counts = [int(p.communicate(timeout=60)[0]) for p in procs]
        assert sum(counts) == 30 and all(c > 0 or sum(counts) == 30 for c in counts)
        assert not table.take("GET /limited", rate=0.001, capacity=30.0).allowed
        assert table.take("GET /other", rate=0.001, capacity=30.0).allowed
    finally:
        table.close()


def test_shared_bucket_slots_are_reused_once_full_again() -> None:
    """A full bucket carries no information: its slot serves another key (bounded memory)."""
    table = SharedBuckets.create(slots=16)
    try:
        for i in range(200):  # far more keys than slots, each refilled at once
            assert table.take(f"client-{i}", rate=1e9, capacity=1.0).allowed
        assert not table.take("slow", rate=1e-6, capacity=1.0, cost=2.0).allowed
    finally:
        table.close()


def test_a_component_schema_serves_check_l_and_the_run_warnings() -> None:
    """One source for a section's shape: the component's schema (no second table in lint/)."""
    from tidegate.lint.linter import lint, unknown_attribute_warnings

    data = {"version": 3, "endpoints": [{"endpoint": "/a", "backend": [
        {"host": ["http://127.0.0.1:9"], "url_pattern": "/a"}],
        "extra_config": {"qos/ratelimit/router": {"capacity": -1, "max_rte": 2}}}]}
    issues = [str(i) for i in lint(data)]
    assert any("capacity" in i and "-1" in i for i in issues), issues
    assert any("max_rte" in i for i in issues), issues
    warnings = unknown_attribute_warnings(data)
    assert any("max_rte" in w and "max_rate" in w for w in warnings), warnings
