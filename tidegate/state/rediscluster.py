"""Token buckets in a Redis Cluster (KrakenD EE's ``redis.clusters[]``).

Every key of one limiter carries the same hash tag (``{...}``), so one script call touches one
slot, served by one master. The cluster's slot map comes from ``CLUSTER SLOTS`` asked of any
node that answers; each master gets its own `RedisBuckets` (one pipelined connection, its own
outage handling and log lines). A ``MOVED`` or ``ASK`` redirect (the cluster is resharding or
failed over) is followed at once, up to ``max_redirects`` times, and reloads the slot map in
the background.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import hiredis

from tidegate.state.redisbuckets import Moved, PoolSettings, RedisBuckets, RedisUnavailable

SLOTS = 16384


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """One of ``redis.clusters[]``: seed addresses, and the settings of each connection."""

    name: str
    seeds: tuple[tuple[str, int], ...]
    node: PoolSettings          # host/port replaced per node
    max_redirects: int = 3

    def fingerprint(self) -> dict[str, Any]:
        """What the client depends on (`Build.state` hashes it)."""
        return dataclasses.asdict(self)


def key_slot(key: str) -> int:
    """Redis Cluster's slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key."""
    raw = key.encode()
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return binascii.crc_hqx(raw, 0) % SLOTS


class RedisCluster:
    """The same interface as `RedisBuckets`, over the masters of a cluster."""

    def __init__(self, settings: ClusterSettings) -> None:
        self.settings = settings
        self.state = "closed"
        self._nodes: dict[str, RedisBuckets] = {}
        self._slots: list[str] = []
        self._refreshing: asyncio.Task[None] | None = None

    def _node(self, host: str, port: int) -> RedisBuckets:
        address = f"{host}:{port}"
        node = self._nodes.get(address)
        if node is None:
            node = RedisBuckets(dataclasses.replace(self.settings.node, host=host, port=port,
                                                    db=0))
            self._nodes[address] = node
            if self.state != "closed":
                node.start()
        return node

    async def open(self) -> None:
        """Connect to the seeds and load the slot map (waits at most a second or two)."""
        if self.state != "closed":
            return
        self.state = "open"
        seeds = [self._node(host, port) for host, port in self.settings.seeds]
        for node in seeds:
            node.start()
        await asyncio.gather(*(node.ready(1.0) for node in seeds))
        await self._refresh()
        await asyncio.gather(*(node.ready(1.0) for node in self._nodes.values()))

    async def _refresh(self) -> None:
        """Ask nodes for the slot map until one answers."""
        for node in list(self._nodes.values()):
            try:
                reply = await node.command(b"CLUSTER", b"SLOTS")
            except RedisUnavailable:
                continue
            if isinstance(reply, hiredis.ReplyError) or not reply:
                continue
            slots = [""] * SLOTS
            for start, end, master, *_ in reply:
                host = master[0].decode() or node.settings.host
                self._node(host, int(master[1]))
                slots[start:end + 1] = [f"{host}:{int(master[1])}"] * (end - start + 1)
            self._slots = slots
            return

    def _refresh_soon(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())

    async def take_chain(self, buckets: Sequence[tuple[str, float, float]],
                         cost: float = 1.0) -> tuple[int, list[float]]:
        """`RedisBuckets.take_chain` on the master that serves the buckets' slot."""
        address = self._slots[key_slot(buckets[0][0])] if self._slots else ""
        node = self._nodes.get(address) if address else None
        if node is None:
            self._refresh_soon()
            raise RedisUnavailable("the cluster's slot map is not known yet")
        if node.state == "connecting":  # found in the slot map a moment ago
            await node.ready(self.settings.node.dial_timeout)
        asking = False
        for _ in range(self.settings.max_redirects + 1):
            try:
                return await node.take_chain(buckets, cost, asking=asking)
            except Moved as moved:
                if not moved.ask:
                    self._refresh_soon()
                node, asking = self._node(moved.host, moved.port), moved.ask
                await node.ready(self.settings.node.dial_timeout)
        raise RedisUnavailable(f"more than {self.settings.max_redirects} redirects")

    def describe(self) -> dict[str, Any]:
        """The cluster as `/__health` shows it: every master's state."""
        nodes = {address: node.describe() for address, node in self._nodes.items()}
        up = sum(1 for n in nodes.values() if n["state"] == "up")
        state = "up" if up == len(nodes) and self._slots else "down" if not up else "degraded"
        return {"addresses": [f"{h}:{p}" for h, p in self.settings.seeds], "state": state,
                "nodes": nodes}

    async def close(self) -> None:
        """Close every node's connection."""
        self.state = "closed"
        if self._refreshing is not None:
            self._refreshing.cancel()
        for node in self._nodes.values():
            await node.close()
