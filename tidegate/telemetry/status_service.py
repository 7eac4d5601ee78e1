"""The status page's state in the supervisor: the sample ring, and the two answers it serves.

It reads the node through two callables (the generation serving, the per-endpoint counters of
the node aggregate) and the reload journal, so it holds no reference into the coordinator or
the metrics code and its tests need neither.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from tidegate.telemetry.listener import Handler, TelemetryRequest, TelemetryResponse
from tidegate.telemetry.reloads import ReloadJournal
from tidegate.telemetry.status_doc import Serving, status_document
from tidegate.telemetry.status_page import (
    JSON_TYPE,
    PAGE_TYPE,
    json_body,
    json_headers,
    page_headers,
    render_page,
)
from tidegate.telemetry.status_stats import SAMPLE_SECONDS, Snapshot, StatsRing

log = logging.getLogger("tidegate")

Answer = tuple[int, list[tuple[str, str]], bytes]


class StatusService:
    """Samples the node's counters every `every` seconds; answers `/__status(.json)`."""

    def __init__(self, journal: ReloadJournal, serving: Callable[[], Serving | None],
                 counters: Callable[[], Snapshot], *, every: float = SAMPLE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.serving = serving
        self.counters = counters
        self.every = every
        self.clock = clock
        self.ring = StatsRing()

    def sample(self) -> None:
        """Keep one sample of the node's counters in the ring."""
        self.ring.add(self.clock(), self.counters())

    def document(self) -> dict[str, Any]:
        """`/__status.json` now (the totals from a live read of the counters)."""
        return status_document(self.serving(), self.journal.events, self.ring,
                               now=self.clock(), live=self.counters())

    def page(self) -> Answer:
        """`GET /__status`: the page with the document embedded."""
        return 200, page_headers(), render_page(self.document())

    def json(self) -> Answer:
        """`GET /__status.json`."""
        return 200, json_headers(), json_body(self.document())

    def routes(self) -> dict[str, Handler]:
        """The telemetry listener's routes: ``/__status`` and ``/__status.json``."""

        async def page(req: TelemetryRequest) -> TelemetryResponse:
            return _response(self.page(), PAGE_TYPE)

        async def document(req: TelemetryRequest) -> TelemetryResponse:
            return _response(self.json(), JSON_TYPE)

        return {"/__status": page, "/__status.json": document}

    async def run(self) -> None:
        """Sample until cancelled (a periodic timer: the charts' spacing, not a wait on a
        condition); a failing read is logged and the next tick tries again."""
        while True:
            try:
                self.sample()
            except Exception:  # the page must never take the supervisor down
                log.exception("status page: sampling the node's counters failed")
            await asyncio.sleep(self.every)


def _response(answer: Answer, content_type: str) -> TelemetryResponse:
    status, headers, body = answer
    return TelemetryResponse(status, body, content_type,
                             [(k, v) for k, v in headers if k != "Content-Type"])
