"""The static proxy (``extra_config.proxy.static``): fixed data merged into the answer when the
chosen strategy matches (lura ``proxy/static.go``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tidegate.config.sections import StaticProxy
from tidegate.messages import ProxyRequest, ProxyResponse

Result = tuple[ProxyResponse | None, BaseException | None]
Proxy = Callable[[ProxyRequest], Awaitable[Result]]

# One per name of config.sections.STATIC_STRATEGIES (the model accepts only those).
STRATEGIES: dict[str, Callable[[ProxyResponse | None, BaseException | None], bool]] = {
    "always": lambda resp, err: True,
    "success": lambda resp, err: err is None,
    "complete": lambda resp, err: resp is not None and resp.complete and err is None,
    "errored": lambda resp, err: err is not None,
    "incomplete": lambda resp, err: resp is None or not resp.complete,
}


def compile_static(static: StaticProxy | None, inner: Proxy) -> Proxy:
    """Wrap `inner` with the static middleware when the endpoint declares one."""
    if static is None:
        return inner
    match = STRATEGIES[static.strategy]
    data = static.data

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
