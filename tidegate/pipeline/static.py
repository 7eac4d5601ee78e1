"""The static proxy (``extra_config.proxy.static``): fixed data merged into the answer when the
chosen strategy matches (lura ``proxy/static.go``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tidegate.messages import ProxyRequest, ProxyResponse

Result = tuple[ProxyResponse | None, BaseException | None]
Proxy = Callable[[ProxyRequest], Awaitable[Result]]

_STRATEGIES: dict[str, Callable[[ProxyResponse | None, BaseException | None], bool]] = {
    "always": lambda resp, err: True,
    "success": lambda resp, err: err is None,
    "complete": lambda resp, err: resp is not None and resp.complete and err is None,
    "errored": lambda resp, err: err is not None,
    "incomplete": lambda resp, err: resp is None or not resp.complete,
}


class StaticConfigError(ValueError):
    """A static proxy block that cannot work."""


def compile_static(extra_config: Mapping[str, Any], inner: Proxy) -> Proxy:
    """Wrap `inner` with the static middleware when the endpoint declares one."""
    proxy_cfg = extra_config.get("proxy")
    static = proxy_cfg.get("static") if isinstance(proxy_cfg, dict) else None
    if not static:
        return inner
    if not isinstance(static, dict):
        raise StaticConfigError("proxy.static must be an object with \"strategy\" and \"data\"")
    strategy = static.get("strategy", "always")
    match = _STRATEGIES.get(strategy) if isinstance(strategy, str) else None
    if match is None:
        raise StaticConfigError(f"unknown static strategy {strategy!r}: expected one of "
                                f"{', '.join(_STRATEGIES)}")
    data = static.get("data") or {}
    if not isinstance(data, dict):
        raise StaticConfigError("proxy.static.data must be an object")

    async def proxy(req: ProxyRequest) -> Result:
        resp, err = await inner(req)
        if not match(resp, err):
            return resp, err
        if resp is None:
            resp = ProxyResponse({}, False)
        if resp.data is None:  # a backend that answered `null`
            resp.data = {}
        resp.data.update(data)
        return resp, err

    return proxy
