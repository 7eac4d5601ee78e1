"""Build and fully validate the next generation's configuration, away from the request path.

`build_candidate` is what both the first start and every reload run: render, parse, override,
type-check, and a trial compile of the whole generation (routes, pipelines, components), so a
configuration that reaches the workers cannot fail there. Whatever goes wrong in a build is a
`ConfigError`, and `build_in_thread` gives up on a build that does not finish in time (a read
from a hung network mount), so neither can stop the gateway from reloading or exiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tidegate.config.loader import LoadedConfig, load_config, locate_error
from tidegate.config.model import build_service
from tidegate.errors import ConfigBuildError, ConfigError, ConfigErrors, JsonPath
from tidegate.lint import unknown_attribute_warnings
from tidegate.lint.failclosed import find_unprotected, split_allowed
from tidegate.pipeline.generation import (
    Generation,
    ServerStatus,
    config_hash,
    endpoint_fingerprints,
)
from tidegate.reload.collector import collector_paused
from tidegate.reload.optout import opted_out, without


@dataclass(frozen=True)
class Candidate:
    """A configuration ready to become a generation."""

    loaded: LoadedConfig
    config_hash: str
    fingerprints: dict[str, str]
    build_seconds: float
    warnings: tuple[str, ...] = ()
    # Protections the config asks for that are served without, by the operator's opt-out.
    unprotected: tuple[str, ...] = ()

    @property
    def listen(self) -> tuple[str, int]:
        """Where it wants to listen."""
        return self.loaded.service.listen_ip, self.loaded.service.port


# How long a build may take before it is abandoned (seconds). A 1,000-endpoint configuration
# builds in well under a second; only a read that never returns comes near this.
BUILD_DEADLINE = 30.0

log = logging.getLogger("tidegate")

# Builds tried while leaving out opted-out sections that fail (each round finds more or stops).
OPT_OUT_ROUNDS = 8


def build_candidate(path: str | None, env: Mapping[str, str], *, port: int | None,
                    debug: bool, allow_unimplemented: frozenset[str] = frozenset()
                    ) -> Candidate:
    """Everything a reload does before the swap; raises ConfigError with file and position.

    A protection the configuration asks for and tidegate does not implement is an error
    (fail closed) unless its name is in `allow_unimplemented`. An exception no check
    foresaw is a ConfigError too (the build is rejected, the gateway keeps serving and
    watching); its traceback is logged at DEBUG for whoever fixes it.
    """
    with collector_paused():
        try:
            return _build_candidate(path, env, port=port, debug=debug,
                                    allow_unimplemented=allow_unimplemented)
        except ConfigError:
            raise
        except RecursionError:
            raise ConfigBuildError("the configuration nests too deeply to be built",
                                   file=path) from None
        except Exception as exc:
            log.debug("unexpected error while building %s", path, exc_info=True)
            raise ConfigBuildError(f"the configuration could not be built: "
                                   f"{type(exc).__name__}: {exc}", file=path) from exc


async def build_in_thread(build: Callable[[], Candidate], *, source: str | None,
                          deadline: float = BUILD_DEADLINE,
                          stop: asyncio.Event | None = None) -> Candidate:
    """Run `build` off the event loop; give up on it after `deadline` seconds or on `stop`.

    A thread cannot be stopped, only left behind: the build runs in a daemon thread of its
    own (not the loop's executor, which is joined at exit), so a read that never returns
    neither holds the caller's lock past the deadline nor keeps the process from exiting.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Candidate] = loop.create_future()
    collecting = gc.isenabled()

    def settle(result: Candidate | None, error: BaseException | None) -> None:
        if done.done():
            return  # abandoned: nobody waits for it any more
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None  # build() returned it
            done.set_result(result)

    def run() -> None:
        result: Candidate | None = None
        error: BaseException | None = None
        try:
            result = build()
        except BaseException as exc:  # handed to the loop, which re-raises it in the caller
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="tidegate-build", daemon=True).start()
    waiters: set[asyncio.Future[Any]] = {done}
    stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
    if stopper is not None:
        waiters.add(stopper)
    try:
        await asyncio.wait(waiters, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if stopper is not None:
            stopper.cancel()
        finished = done.done()
        if not finished:
            done.cancel()  # abandoned (or the caller was cancelled): its outcome is dropped
    if finished:
        return done.result()
    if collecting:
        gc.enable()  # the abandoned build paused the collector and will not resume it
    if stop is not None and stop.is_set():
        raise ConfigBuildError("the build was abandoned: the gateway is stopping", file=source)
    raise ConfigBuildError(
        f"the build did not finish within {deadline:g}s (a read that never returns, such as "
        f"a hung network mount?); it was abandoned, the next save is built afresh",
        file=source)


def _build_candidate(path: str | None, env: Mapping[str, str], *, port: int | None,
                     debug: bool, allow_unimplemented: frozenset[str]) -> Candidate:
    started = time.perf_counter()
    loaded = load_config(path, env, port=port)
    found = find_unprotected(loaded.data)
    refused, unprotected = split_allowed(found, allow_unimplemented)
    errors: list[ConfigError] = list(refused)
    trial, build_errors = _trial(loaded, debug)
    left_out: dict[JsonPath, str] = {}
    for _ in range(OPT_OUT_ROUNDS):
        if not (build_errors and allow_unimplemented) or errors:
            break
        # Sections tidegate cannot serve as written, opted out by name: left out (optout.py);
        # a build stops at some errors, so the next round may find more.
        build_errors, sections = opted_out(build_errors, allow_unimplemented)
        if not sections or build_errors:
            break
        left_out.update(sections)
        data = without(loaded.data, sections)
        loaded = replace(loaded, data=data, service=build_service(data))
        trial, build_errors = _trial(loaded, debug)
    unprotected = tuple(sorted({*unprotected, *left_out.values()}))
    errors.extend(build_errors)
    if errors:
        locate_error(ConfigErrors(errors), loaded.document)
        errors.sort(key=lambda e: (e.line or 0, e.col or 0))  # in the order of the file
        raise ConfigErrors(errors) from None
    assert trial is not None
    warnings = tuple(unknown_attribute_warnings(loaded.data, loaded.document))
    return Candidate(loaded, config_hash(loaded.data), endpoint_fingerprints(trial.service),
                     time.perf_counter() - started, warnings, unprotected)


def _trial(loaded: LoadedConfig, debug: bool) -> tuple[Generation | None, list[ConfigError]]:
    """The whole generation compiled once, or the errors that stop it."""
    try:
        return Generation(loaded.service, 0, "", debug=debug, status=ServerStatus()), []
    except ConfigErrors as exc:
        return None, list(exc.errors)
    except ConfigError as exc:
        return None, [exc]


def unprotected_lines(candidate: Candidate) -> list[str]:
    """What the fail-closed opt-out lets through, one loud line per name (for every start)."""
    return [f"--allow-unimplemented {name}: serving WITHOUT the protection the configuration "
            f"asks for ({name} is not implemented by tidegate, or its section cannot be "
            f"served as written); for development only"
            for name in candidate.unprotected]
