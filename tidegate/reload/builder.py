"""Build and fully validate the next generation's configuration, away from the request path.

`build_candidate` is what both the first start and every reload run: render, parse, override,
type-check, and a trial compile of the whole generation (routes, pipelines, components), so a
configuration that reaches the workers cannot fail there.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tidegate.config.loader import LoadedConfig, load_config, locate_error
from tidegate.errors import ConfigError, ConfigErrors
from tidegate.lint import unknown_attribute_warnings
from tidegate.lint.failclosed import find_unprotected, split_allowed
from tidegate.pipeline.generation import (
    Generation,
    ServerStatus,
    config_hash,
    endpoint_fingerprints,
)


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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic GC while a generation is built.

    A build allocates hundreds of thousands of objects that all survive; with the collector
    on, it scans the growing heap again and again (for 1,000 endpoints that was a third of
    the build time). Nothing built here is garbage until the build is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_candidate(path: str | None, env: Mapping[str, str], *, port: int | None,
                    debug: bool, allow_unimplemented: frozenset[str] = frozenset()
                    ) -> Candidate:
    """Everything a reload does before the swap; raises ConfigError with file and position.

    A protection the configuration asks for and tidegate does not implement is an error
    (fail closed) unless its name is in `allow_unimplemented`.
    """
    with collector_paused():
        return _build_candidate(path, env, port=port, debug=debug,
                                allow_unimplemented=allow_unimplemented)


def _build_candidate(path: str | None, env: Mapping[str, str], *, port: int | None,
                     debug: bool, allow_unimplemented: frozenset[str]) -> Candidate:
    started = time.perf_counter()
    loaded = load_config(path, env, port=port)
    found = find_unprotected(loaded.data)
    errors, unprotected = split_allowed(found, allow_unimplemented)
    trial: Generation | None = None
    try:
        trial = Generation(loaded.service, 0, "", debug=debug, status=ServerStatus())
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    if errors:
        locate_error(ConfigErrors(errors), loaded.document)
        errors.sort(key=lambda e: (e.line or 0, e.col or 0))  # in the order of the file
        raise ConfigErrors(errors) from None
    assert trial is not None
    warnings = tuple(unknown_attribute_warnings(loaded.data, loaded.document))
    return Candidate(loaded, config_hash(loaded.data), endpoint_fingerprints(trial.service),
                     time.perf_counter() - started, warnings, unprotected)


def unprotected_lines(candidate: Candidate) -> list[str]:
    """What the fail-closed opt-out lets through, one loud line per name (for every start)."""
    return [f"--allow-unimplemented {name}: serving WITHOUT the protection the configuration "
            f"asks for ({name} is not implemented by tidegate); for development only"
            for name in candidate.unprotected]


def describe_changes(old: dict[str, str], new: dict[str, str]) -> str:
    """``+2 endpoints, -1, ~3 changed`` between two fingerprint maps."""
    added = len(new.keys() - old.keys())
    removed = len(old.keys() - new.keys())
    changed = sum(1 for k in new.keys() & old.keys() if new[k] != old[k])
    return f"+{added} endpoints, -{removed}, ~{changed} changed"
