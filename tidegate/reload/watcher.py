"""Watch everything a configuration is made of, and say "something changed" once per burst.

watchfiles (Rust notify: inotify on Linux) rather than polling. A burst of writes, an atomic
rename or a delete-then-create arrives as one change set after a short quiet period. Editor
temporaries, `.git/` and the flexible-config output file (``FC_OUT``) never trigger a reload.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import watchfiles
from watchfiles._rust_notify import RustNotify

# Quiet time that ends a burst, and the longest a burst may be grouped (milliseconds).
STEP_MS = 30
DEBOUNCE_MS = 400

_IGNORED_NAMES = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913", "*.tmp", ".DS_Store",
                  "*.pyc")
_IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".idea", ".vscode"})


class ConfigFilter(watchfiles.DefaultFilter):
    """Drop editor noise, VCS folders and the files tidegate itself writes."""

    def __init__(self, ignore_paths: Iterable[str]) -> None:
        super().__init__(ignore_dirs=tuple(_IGNORED_DIRS), ignore_entity_patterns=())
        self.ignore_paths = {os.path.realpath(p) for p in ignore_paths}

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatchcase(name, pat) for pat in _IGNORED_NAMES):
            return False
        parts = Path(path).parts
        if any(p in _IGNORED_DIRS for p in parts):
            return False
        return os.path.realpath(path) not in self.ignore_paths


def watch_roots(paths: Iterable[str]) -> list[str]:
    """Existing folders to watch (a missing one is skipped; its parent would be too broad)."""
    roots = []
    for p in sorted(set(paths)):
        path = Path(p)
        if path.is_file():
            path = path.parent
        if path.is_dir() and str(path) not in roots:
            roots.append(str(path))
    return roots


class ConfigWatcher:
    """Watches registered at construction, so "watching" is a fact before anything is read.

    That ordering is what makes the first build race-free: a save that lands while the first
    configuration is being built still produces a change set.
    """

    def __init__(self, paths: Iterable[str], ignore_paths: Iterable[str]) -> None:
        roots = watch_roots(paths)
        self._filter = ConfigFilter(ignore_paths)
        self._stop = threading.Event()
        # RustNotify is what watchfiles.awatch wraps; using it directly lets the watches be
        # registered now rather than on the first iteration.
        self._notify = (RustNotify(roots, False, False, 300, True, False) if roots else None)

    async def changes(self) -> AsyncIterator[set[str]]:
        """Yield the set of changed paths, once per burst, until closed or cancelled."""
        if self._notify is None:
            await asyncio.Event().wait()  # nothing to watch: wait to be cancelled
            return
        try:
            while not self._stop.is_set():
                raw = await asyncio.to_thread(self._notify.watch, DEBOUNCE_MS, STEP_MS, 1000,
                                              self._stop)
                if raw == "timeout":
                    continue
                if isinstance(raw, str):  # "stop" or "signal"
                    return
                paths = {path for change, path in raw
                         if self._filter(watchfiles.Change(change), path)}
                if paths:
                    yield paths
        finally:
            self.close()

    def close(self) -> None:
        """Stop watching (the watch thread notices within its timeout)."""
        self._stop.set()


async def watch_changes(paths: Iterable[str], ignore_paths: Iterable[str],
                        stop: asyncio.Event) -> AsyncIterator[set[str]]:
    """Yield the set of changed paths, once per burst, until `stop` is set."""
    watcher = ConfigWatcher(paths, ignore_paths)
    stopper = asyncio.ensure_future(stop.wait())
    stopper.add_done_callback(lambda _: watcher.close())
    try:
        async for changed in watcher.changes():
            yield changed
    finally:
        stopper.cancel()
