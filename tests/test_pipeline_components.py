"""The component seam: a registered component wraps the right stage, chosen at compile time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_pipeline_support import (
    Answer,
    Gateway,
    ScriptedBackend,
    Seen,
    answer,
    backend_cfg,
    endpoint,
    reply_with,
    run,
    service,
)
from tidegate.components import (
    DEFAULT_REGISTRY,
    Build,
    Component,
    Level,
    Registry,
)
from tidegate.config.model import build_service
from tidegate.errors import ConfigErrors
from tidegate.messages import (
    BackendProxy,
    EndpointHandler,
    Proxy,
    ProxyRequest,
    ProxyResponse,
    Request,
    Response,
)

NS = "test/stamp"
FIRST = {"id": 5, "n": {"list": [1, 2]}}
built: list[Build[Any]] = []


def stamp_backend(ctx: Build[Any], nxt: BackendProxy) -> BackendProxy:
    """Adds a request header from its config and the sequential params it can see."""
    built.append(ctx)
    value = ctx.config["value"]

    async def call(req: ProxyRequest) -> ProxyResponse:
        req.headers = {**req.headers, "X-Stamp": [value],
                       "X-Params": [",".join(f"{k}={v}" for k, v in sorted(req.params.items()))]}
        resp = await nxt(req)
        resp.data[f"stamped_{value}"] = req.path
        return resp

    return call


def stamp_proxy(ctx: Build[Any], nxt: Proxy) -> Proxy:
    built.append(ctx)

    async def call(req: ProxyRequest) -> tuple[ProxyResponse | None, BaseException | None]:
        resp, err = await nxt(req)
        if resp is not None:
            resp.data["proxy_saw"] = sorted(resp.data)
        return resp, err

    return call


def stamp_router(ctx: Build[Any], nxt: EndpointHandler) -> EndpointHandler:
    built.append(ctx)

    async def call(req: Request, params: dict[str, str]) -> Response:
        if req.header("x-key") != ctx.config["key"]:
            return Response(401, [("Content-Type", "text/plain")], b"no key")
        return await nxt(req, params)

    return call


def _v3(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"version": 3, **cfg}


def component(build: Any, *levels: Level, **kw: Any) -> Component[Any]:
    return Component(NS, frozenset(levels), build, **kw)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    built.clear()
    yield
    DEFAULT_REGISTRY.remove(NS)


def _echo(seen: Seen) -> dict[str, Any]:
    return {"stamp": seen.headers.get("x-stamp"), "params": seen.headers.get("x-params")}


async def _ask(config: Any, *requests: tuple[str, dict[str, str]]) -> list[Answer]:
    async with ScriptedBackend({"/a": reply_with(_echo), "/first": answer(200, FIRST),
                                "/b/v": reply_with(_echo)}) as backend:
        gw = Gateway(config(backend.url))
        try:
            return [await gw.get(path, headers) for path, headers in requests]
        finally:
            await gw.close()


def test_backend_component_wraps_only_the_backends_that_configure_it() -> None:
    DEFAULT_REGISTRY.add(component(stamp_backend, Level.BACKEND))
    answers = run(_ask(lambda url: service(
        endpoint("/on", backend_cfg(url, "/a", extra_config={NS: {"value": "v1"},
                                                              "unknown/ns": {"x": 1}})),
        endpoint("/off", backend_cfg(url, "/a"))), ("/on", {}), ("/off", {})))
    on, off = answers
    assert on.status == 200
    assert on.json() == {"stamp": "v1", "params": "", "stamped_v1": "/a"}
    assert off.json() == {"stamp": None, "params": None}
    assert [(c.namespace, c.scope, c.config, c.path) for c in built] == [
        (NS, "GET /on #0", {"value": "v1"},
         ("endpoints", 0, "backend", 0, "extra_config", NS))]
    assert built[0].backend is not None and built[0].backend.url_pattern == "/a"


def test_backend_component_sees_sequential_propagated_params() -> None:
    DEFAULT_REGISTRY.add(component(stamp_backend, Level.BACKEND))
    seq = {"proxy": {"sequential": True,
                     "sequential_propagated_params": ["resp0_id", "resp0_n.list"]}}
    (resp,) = run(_ask(lambda url: service(endpoint(
        "/seq", backend_cfg(url, "/first"),
        backend_cfg(url, "/b/v", group="second", extra_config={NS: {"value": "s"}}),
        extra_config=seq)), ("/seq", {})))
    assert resp.status == 200
    assert resp.json()["second"]["params"] == "Resp0_id=5,Resp0_n.list=1,2"


def test_proxy_and_router_components_wrap_the_endpoint() -> None:
    def both(ctx: Build[Any], nxt: Any) -> Any:
        return (stamp_proxy if ctx.level is Level.PROXY else stamp_router)(ctx, nxt)

    DEFAULT_REGISTRY.add(component(both, Level.PROXY, Level.ROUTER))
    answers = run(_ask(lambda url: service(endpoint(
        "/both", backend_cfg(url, "/a", group="x"), backend_cfg(url, "/a", group="y"),
        extra_config={NS: {"key": "k"}})), ("/both", {"X-Key": "k"}), ("/both", {})))
    ok, rejected = answers
    assert ok.status == 200 and ok.json()["proxy_saw"] == ["x", "y"]
    assert (rejected.status, rejected.body) == (401, b"no key")
    assert sorted((c.level.value, c.scope) for c in built) == [
        ("proxy", "GET /both"), ("router", "GET /both")]


def test_router_component_can_be_configured_service_wide() -> None:
    reg = Registry()
    reg.add(component(stamp_router, Level.ROUTER, service_wide=True))

    async def handler(req: Request, params: dict[str, str]) -> Response:
        return Response(200)

    svc = build_service(_v3(service(endpoint("/x", backend_cfg("http://127.0.0.1:1", "/a")),
                                extra_config={NS: {"key": "k"}}, return_error_msg=False)))
    wrapped = reg.assembly(svc).wrap(Level.ROUTER, handler, {}, endpoint=svc.endpoints[0])
    assert wrapped is not handler and built[0].path == ("extra_config", NS)
    assert built[0].scope == "GET /x"  # state is still the endpoint's own
    bare = build_service(_v3(service(endpoint("/x", backend_cfg("http://127.0.0.1:1", "/a")))))
    assert reg.assembly(bare).wrap(Level.ROUTER, handler, {},
                                   endpoint=bare.endpoints[0]) is handler


def test_stacking_order_is_the_registration_order_value() -> None:
    reg = Registry()
    calls: list[str] = []

    def named(name: str, order: int, **kw: Any) -> Component[Any]:
        def build(ctx: Build[Any], nxt: Any) -> Any:
            async def call(req: Any) -> Any:
                calls.append(name)
                return await nxt(req)
            return call
        return Component(name, frozenset({Level.BACKEND}), build, order=order, **kw)

    reg.add(named("outer", 20))
    reg.add(named("inner", 10))
    assert reg.namespaces(Level.BACKEND) == ("inner", "outer")

    async def core(req: Any) -> Any:
        calls.append("core")
        return req

    svc = build_service(_v3(service(endpoint("/x", backend_cfg(
        "http://127.0.0.1:1", "/a", extra_config={"inner": {}, "outer": {}})))))
    backend = svc.endpoints[0].backend[0]
    stage = reg.assembly(svc).wrap(Level.BACKEND, core, backend.extra_config, backend=backend)
    run(stage(None))
    assert calls == ["outer", "inner", "core"]
    with pytest.raises(ValueError, match="already registered"):
        reg.add(named("inner", 1))
    with pytest.raises(ValueError, match="service-level component cannot be service-wide"):
        reg.add(Component("x", frozenset({Level.SERVICE}), lambda ctx, nxt: nxt,
                          service_wide=True))


def test_a_component_rejecting_its_config_is_located_at_the_key() -> None:
    def parse(raw: Any, path: tuple[str | int, ...]) -> int:
        if not isinstance(raw.get("value"), int):
            from tidegate.errors import ConfigValueError
            raise ConfigValueError("value: expected an integer", path=(*path, "value"))
        return int(raw["value"])

    DEFAULT_REGISTRY.add(component(lambda ctx, nxt: nxt, Level.BACKEND, parse=parse))
    with pytest.raises(ConfigErrors) as info:
        Gateway(service(endpoint("/ok", backend_cfg("http://127.0.0.1:1", "/a")),
                        endpoint("/x", backend_cfg("http://127.0.0.1:1", "/a",
                                                   extra_config={NS: {"value": "2"}}))))
    (err,) = info.value.errors
    assert err.path == ("endpoints", 1, "backend", 0, "extra_config", NS, "value")
    assert "expected an integer" in str(err)


def test_a_factory_raising_value_error_rejects_the_generation() -> None:
    def picky(ctx: Build[Any], nxt: Any) -> Any:
        raise ValueError(f"{ctx.namespace}: 'value' is required")

    DEFAULT_REGISTRY.add(component(picky, Level.BACKEND))
    with pytest.raises(ConfigErrors, match="'value' is required"):
        Gateway(service(endpoint("/x", backend_cfg("http://127.0.0.1:1", "/a",
                                                   extra_config={NS: {}}))))


def test_no_component_means_no_wrapper() -> None:
    gw = Gateway(service(endpoint("/x", backend_cfg("http://127.0.0.1:1", "/a"))))
    try:
        (handler_backend,) = _backends(gw)
        assert handler_backend.send == handler_backend._send
        assert gw.gen.handle == gw.gen.route  # no service component: routing directly
    finally:
        run(gw.close())


def _backends(gw: Gateway) -> list[Any]:
    """The compiled backends of a one-endpoint gateway, rebuilt the way Generation does."""
    from tidegate.pipeline.backend import CompiledBackend
    from tidegate.pipeline.generation import USER_AGENT

    ep = gw.gen.service.endpoints[0]
    return [CompiledBackend(b, gw.gen.client, USER_AGENT) for b in ep.backend]
