"""One log format for the supervisor and its workers (they share stderr: one combined log)."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(role: str, level: str | None = None) -> None:
    """``2026/11/27 17:00:00 TIDEGATE [INFO] w0: message`` on stderr, KrakenD-like."""
    level = (level or os.environ.get("TIDEGATE_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s TIDEGATE [%(levelname)s] {role}: %(message)s", "%Y/%m/%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
