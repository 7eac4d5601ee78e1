"""Where Go would stop an endless {{template}} recursion.

Go fails at the call made at depth 100000; Python's stack ends far earlier, so the chain of
calls seen so far is extended by its period to find the node (and template) Go reports.
"""

from __future__ import annotations

from typing import Any


def call_at_depth(chain: list[tuple[Any, Any]], depth: int) -> tuple[Any, Any]:
    """The (node, template) of the call at `depth`; re-raises RecursionError if the chain
    is too short or not periodic (no sensible position to report)."""
    d = len(chain)
    ids = [id(n) for n, _ in chain]
    tail = ids[d // 2:]
    period = next((p for p in range(1, len(tail) // 2) if tail[p:] == tail[:-p]), 0)
    if d < 64 or not period:
        raise RecursionError
    return chain[d - period + (depth - (d - period)) % period]
