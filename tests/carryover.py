"""The carry-over contract every stateful component passes, written once.

A user who saves an unrelated change must not see a component's state reset; a user who changes
the component's own section must get fresh state; the state of an endpoint that was removed must
be freed once the generation that served it has drained. `assert_carry_over` checks exactly that
on real generations and a real `StateStore`, in the order a worker runs them (provision the new
generation before the swap, close the old one after its drain).

Use it from a component's tests::

    assert_carry_over(NAMESPACE, config=lambda section: {...}, section={...},
                      changed={...})
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tidegate.config.model import build_service
from tidegate.pipeline.generation import Generation, ServerStatus
from tidegate.state import StateStore

UNRELATED = {"endpoint": "/__carry_over_unrelated", "backend": [
    {"host": ["http://127.0.0.1:9"], "url_pattern": "/x"}]}


def _entries(store: StateStore, namespace: str) -> dict[tuple[str, str, str], Any]:
    return {k: store._values[k] for k in store.held() if k[0] == namespace}


def assert_carry_over(namespace: str, *, config: Callable[[dict[str, Any] | None],
                                                           dict[str, Any]],
                      section: dict[str, Any], changed: dict[str, Any]) -> None:
    """`config(section)` is a whole configuration using the component with `section`;
    `config(None)` the same configuration without the component's endpoint(s)."""
    asyncio.run(_contract(namespace, config, section, changed))


async def _contract(namespace: str, config: Callable[[dict[str, Any] | None], dict[str, Any]],
                    section: dict[str, Any], changed: dict[str, Any]) -> None:
    store = StateStore()
    status = ServerStatus()
    ids = iter(range(1, 100))

    def compile_(data: dict[str, Any]) -> Generation:
        return Generation(build_service(data), next(ids), "carry", debug=False, status=status)

    # The supervisor's trial build compiles without provisioning: it holds no state.
    compile_(config(section))
    assert _entries(store, namespace) == {}, "a compiled generation must not lease state"

    first = compile_(config(section))
    await first.provision(store)
    held = _entries(store, namespace)
    assert held, f"{namespace}: the component leased no state"

    # An unrelated change: same entries, same objects, across the swap and the old one's close.
    data = config(section)
    data["endpoints"] = [*data["endpoints"], UNRELATED]
    second = compile_(data)
    await second.provision(store)
    await first.close()
    kept = _entries(store, namespace)
    assert kept.keys() == held.keys(), "an unrelated change must keep the state"
    assert all(kept[k] is held[k] for k in held), "the state must be the same object"

    # The component's own section changed: fresh state; the old entries go with the old one.
    third = compile_(config(changed))
    await third.provision(store)
    fresh = {k: v for k, v in _entries(store, namespace).items() if k not in held}
    assert fresh, "a change of the section must give fresh state (a new fingerprint)"
    assert not {id(v) for v in fresh.values()} & {id(v) for v in held.values()}
    await second.close()
    assert _entries(store, namespace).keys() == fresh.keys(), \
        "state nobody leases any more must be freed after the drain"

    # The endpoint removed: nothing of the namespace is left once its generation is closed.
    fourth = compile_(config(None))
    await fourth.provision(store)
    await third.close()
    assert _entries(store, namespace) == {}, "a removed endpoint's state must be freed"
    await fourth.close()
    await store.settle()
