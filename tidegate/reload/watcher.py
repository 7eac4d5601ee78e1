"""Watch what a configuration is made of, and say "something changed" once per burst.

What is watched is the path the user gave, not what it resolves to today. A Kubernetes
ConfigMap is ``dir/krakend.json -> ..data/krakend.json`` with ``..data -> ..2026_…`` and an
update swaps ``..data`` to a new folder and deletes the old one; a folder can be deleted and
made again. So the watcher follows the path's symlinks itself (`resolution_chain`), watches
the folder of each link and of the file it ends at (and their parents, to see a folder come
back), and after every burst works that out again: when it changed, the watches are re-armed
before the change is reported, so the reload that follows reads under the new watches.

Only changes to the configuration's own files count: the config file (each link on its way),
with flexible configuration everything under the settings, partials and templates folders,
and the files the configuration itself names (`also`: the certificates, keys and CA files of
`tls` and `client_tls`, as the last build read them), so a renewed certificate reloads like
an edit. A log file beside the configuration is none of these. Editor temporaries, VCS folders
and the flexible-config output file (``FC_OUT``) never count.

watchfiles' RustNotify (inotify on Linux), non-recursive, rather than polling; a burst of
writes, an atomic rename or a delete-then-create arrives as one change set.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import watchfiles
from watchfiles._rust_notify import RustNotify

log = logging.getLogger("tidegate")

# Quiet time that ends a burst, and the longest a burst may be grouped (milliseconds).
STEP_MS = 30
DEBOUNCE_MS = 400
# How often, without any event, the watcher checks that its watches still fit the paths.
RECHECK_MS = 1000
# Symlinks followed in one path (Linux's own limit), folders watched under one tree.
MAX_LINKS = 40
MAX_TREE_DIRS = 1000

_IGNORED_NAMES = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913", "*.tmp", ".DS_Store",
                  "*.pyc")
_IGNORED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".idea", ".vscode"})


class ConfigFilter(watchfiles.DefaultFilter):
    """Drop editor noise, VCS folders and the files tidegate itself writes."""

    def __init__(self, ignore_paths: Iterable[str]) -> None:
        super().__init__(ignore_dirs=tuple(_IGNORED_DIRS), ignore_entity_patterns=())
        self.ignored_real = {os.path.realpath(p) for p in ignore_paths}

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatchcase(name, pat) for pat in _IGNORED_NAMES):
            return False
        parts = Path(path).parts
        if any(p in _IGNORED_DIRS for p in parts):
            return False
        return os.path.realpath(path) not in self.ignored_real


# --- what to watch -----------------------------------------------------------------------------

def resolution_chain(path: str) -> list[str]:
    """Every symlink met while resolving `path` (the path itself when it is one), and the path
    it ends at; a missing part ends the chain where it is.

    Each entry is free of symlinks but for its last component, so its folder can be watched
    as it is and the events there name it exactly.
    """
    current = os.path.abspath(path)
    chain = []
    for _ in range(MAX_LINKS):
        link = _first_link(current)
        if link is None:
            break
        try:
            target = os.readlink(link)
        except OSError:
            break  # replaced since it was seen: the next burst resolves it again
        chain.append(link)
        rest = os.path.relpath(current, link)
        resolved = os.path.join(os.path.dirname(link), target)
        current = os.path.normpath(resolved if rest == "." else os.path.join(resolved, rest))
    chain.append(current)
    return list(dict.fromkeys(chain))


def _first_link(path: str) -> str | None:
    """The shortest prefix of `path` that is a symlink, if any (stops at a missing part)."""
    parts = Path(path).parts
    prefix = parts[0]
    for part in parts[1:]:
        prefix = os.path.join(prefix, part)
        if os.path.islink(prefix):
            return prefix
        if not os.path.lexists(prefix):
            return None
    return None


def _existing_folder(path: str) -> str:
    """`path` if it is a folder, else its nearest ancestor that is (at worst the root)."""
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _tree_folders(root: str) -> list[str]:
    """A folder and those under it (VCS and editor folders left out), up to a bound."""
    found = [root]
    for folder, subdirs, _ in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in _IGNORED_DIRS)
        found += (os.path.join(folder, d) for d in subdirs)
        if len(found) >= MAX_TREE_DIRS:
            break
    return found[:MAX_TREE_DIRS]


@dataclass(frozen=True)
class WatchPlan:
    """Which folders to watch, and which paths in them are the configuration."""

    folders: frozenset[str]
    files: frozenset[str]   # each path on the way to a config file, and the file
    trees: frozenset[str]   # folders whose whole content counts (flexible configuration)

    def matters(self, path: str) -> bool:
        """Whether a change at `path` can change the configuration."""
        if path in self.files or path in self.trees:
            return True
        below = path + os.sep
        if any(f.startswith(below) for f in self.files | self.trees):
            return True  # a folder on the way was created, removed or replaced
        return any(path.startswith(t + os.sep) for t in self.trees)


def plan_watches(targets: Iterable[str]) -> WatchPlan:
    """The watches for these paths as they are on disk right now.

    A target that is a folder is a tree; any other (a file, or nothing yet) is a file. Each
    path on its resolution chain is watched from its folder and that folder's parent, so a
    swapped link, a replaced file and a folder deleted and made again are all seen.
    """
    folders: set[str] = set()
    files: set[str] = set()
    trees: set[str] = set()
    for target in targets:
        chain = resolution_chain(target)
        end = chain[-1]
        if os.path.isdir(end):
            trees.add(end)
            folders.update(_tree_folders(end))
            files.update(chain[:-1])
        else:
            files.update(chain)
        for path in chain:
            parent = os.path.dirname(path)
            folders.add(_existing_folder(parent))
            folders.add(_existing_folder(os.path.dirname(parent)))
    return WatchPlan(frozenset(folders), frozenset(files), frozenset(trees))


# --- watching ------------------------------------------------------------------------------

class ConfigWatcher:
    """Watches registered at construction, so "watching" is a fact before anything is read.

    That ordering is what makes the first build race-free: a save that lands while the first
    configuration is being built still produces a change set. The same holds after every
    re-arm: the new watches exist before the change that caused them is reported.
    """

    def __init__(self, paths: Iterable[str], ignore_paths: Iterable[str],
                 also: Callable[[], Iterable[str]] | None = None) -> None:
        self._targets = tuple(os.path.abspath(p) for p in paths)
        # Files the configuration names, known only once it is built: asked for at every
        # re-plan (after each burst, and each second without one).
        self._also = also
        self._filter = ConfigFilter(ignore_paths)
        self._stop = threading.Event()
        self._closed = False
        self.plan = WatchPlan(frozenset(), frozenset(), frozenset())
        self._notify: RustNotify | None = None
        self.rearms = 0
        if self._targets:
            self._arm()

    @property
    def closed(self) -> bool:
        """Whether `close` was called (the watch ended on purpose, not by a failure)."""
        return self._closed

    def _arm(self) -> bool:
        """Watch what the paths are made of now; True when that differs from before."""
        targets = self._targets
        if self._also is not None:
            targets = tuple(dict.fromkeys((*targets, *self._also())))
        for _ in range(5):
            plan = plan_watches(targets)
            if plan == self.plan and self._notify is not None:
                return False
            try:
                # RustNotify is what watchfiles.awatch wraps; using it directly lets the
                # watches be registered now rather than on the first iteration.
                notify = RustNotify(sorted(plan.folders), False, False, 300, False, True)
            except FileNotFoundError:
                continue  # a folder went away between planning and watching: plan again
            old, self._notify, self.plan = self._notify, notify, plan
            if old is not None:
                old.close()
                self.rearms += 1
            return True
        raise OSError("the watched folders keep disappearing")

    async def changes(self) -> AsyncIterator[set[str]]:
        """Yield the set of changed paths, once per burst, until closed or cancelled."""
        if self._notify is None:
            await asyncio.Event().wait()  # nothing to watch: wait to be cancelled
            return
        try:
            while not self._stop.is_set():
                raw = await asyncio.to_thread(self._notify.watch, DEBOUNCE_MS, STEP_MS,
                                              RECHECK_MS, self._stop)
                if raw == "stop":
                    return
                if isinstance(raw, str):  # "timeout" (or "signal"): check the watches still fit
                    if self._arm():
                        yield set(self.plan.files | self.plan.trees)
                    continue
                before = self.plan
                rearmed = self._arm()
                paths = {path for change, path in raw
                         if self._counts(watchfiles.Change(change), path, before)}
                if rearmed and not paths:
                    paths = set(self.plan.files | self.plan.trees)
                if paths:
                    yield paths
        finally:
            self._stop.set()  # a watch thread still running returns within its step

    def _counts(self, change: watchfiles.Change, path: str, before: WatchPlan) -> bool:
        if not (before.matters(path) or self.plan.matters(path)):
            return False
        if path in before.files or path in self.plan.files:
            return True  # the user named this file (or it is a link on the way to it)
        return self._filter(change, path)

    def close(self) -> None:
        """Stop watching (the watch thread notices within its step)."""
        self._closed = True
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


# --- supervision ---------------------------------------------------------------------------

# After a watcher failure: first and longest wait before watching again (seconds).
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
RESTARTED = "(watcher restarted)"


def supervise_watch(make_watcher: Callable[[], ConfigWatcher],
                    on_change: Callable[[set[str]], Awaitable[None]]) -> asyncio.Task[None]:
    """Watch forever: call `on_change` for each change set, whatever fails.

    The first watcher is armed now, before the caller reads the configuration. A failing
    `on_change` is logged and the next change is still delivered; a watcher that fails is
    logged, armed again after a growing delay, and followed by one `on_change({RESTARTED})`
    since saves may have been missed while nothing watched.
    """
    try:
        first: ConfigWatcher | None = make_watcher()
    except Exception:
        log.exception("cannot watch the configuration; trying again")
        first = None
    return asyncio.ensure_future(_watch_forever(first, make_watcher, on_change))


async def _watch_forever(watcher: ConfigWatcher | None,
                         make_watcher: Callable[[], ConfigWatcher],
                         on_change: Callable[[set[str]], Awaitable[None]]) -> None:
    delay = RESTART_DELAY
    while True:
        try:
            if watcher is None:
                watcher = make_watcher()
                log.info("watching the configuration again")
                await _deliver(on_change, {RESTARTED})
            async for changed in watcher.changes():
                delay = RESTART_DELAY
                await _deliver(on_change, changed)
            if watcher.closed:
                return
            raise RuntimeError("the watch ended by itself")
        except asyncio.CancelledError:
            if watcher is not None:
                watcher.close()
            raise
        except Exception:
            log.exception("the configuration watcher failed; watching again in %.1fs", delay)
            if watcher is not None:
                watcher.close()
            watcher = None
            await asyncio.sleep(delay)  # a back-off, so a persistent failure is not a spin
            delay = min(delay * 2, MAX_RESTART_DELAY)


async def _deliver(on_change: Callable[[set[str]], Awaitable[None]], changed: set[str]) -> None:
    try:
        await on_change(changed)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("handling a configuration change failed; still watching")


