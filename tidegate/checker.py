"""`tidegate check`: validate a configuration exactly as `run` would, then say so.

The check builds the whole generation (the same `build_candidate` a reload runs), so "Syntax OK!"
means `run` will serve it. `-t` also binds the port for a moment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys

from tidegate.config.durations import format_duration
from tidegate.config.model import ServiceConfig
from tidegate.errors import ConfigError
from tidegate.reload.builder import Candidate, build_candidate

EXIT_OK = 0
EXIT_INVALID = 1


def check_once(path: str, *, debug: int, indent: str, test_gateway: bool) -> int:
    """One verdict on stdout/stderr; returns the exit code."""
    try:
        candidate = build_candidate(path, dict(os.environ), port=None, debug=False)
    except ConfigError as exc:
        print(f"ERROR parsing the configuration file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if debug:
        print(describe_service(candidate.loaded.service, debug, indent))
    if test_gateway:
        error = _try_bind(candidate)
        if error:
            print(f"ERROR testing the configuration: {error}", file=sys.stderr)
            return EXIT_INVALID
    print("Syntax OK!")
    return EXIT_OK


def _try_bind(candidate: Candidate) -> str | None:
    ip, port = candidate.listen
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as exc:
            return f"cannot listen on {ip}:{port}: {exc.strerror or exc}"
    return None


def describe_service(service: ServiceConfig, level: int, indent: str) -> str:
    """What tidegate understood, in the layout of `krakend check -d`."""
    lines = ["Parsed configuration:", f"Name: {service.name}", f"Port: {service.port}",
             f"Timeout: {format_duration(service.timeout)}",
             f"CacheTTL: {format_duration(service.cache_ttl)}",
             f"Extra: {len(service.extra_config)} component(s)"]
    if level >= 2:
        for ns in sorted(service.extra_config):
            lines.append(f"{indent}{ns}")
    lines.append(f"Endpoints: {len(service.endpoints)}")
    for ep in service.endpoints:
        lines.append(f"{indent}Endpoint: {ep.method} {ep.endpoint}")
        lines.append(f"{indent}{indent}Timeout: {format_duration(ep.timeout)}")
        lines.append(f"{indent}{indent}CacheTTL: {format_duration(ep.cache_ttl)}")
        lines.append(f"{indent}{indent}OutputEncoding: {ep.output_encoding}")
        lines.append(f"{indent}{indent}Backends: {len(ep.backend)}")
        if level >= 2:
            for b in ep.backend:
                lines.append(f"{indent}{indent}{indent}URL: {b.url_pattern}")
                lines.append(f"{indent}{indent}{indent}Method: {b.method}")
                lines.append(f"{indent}{indent}{indent}Hosts: {list(b.host)}")
                lines.append(f"{indent}{indent}{indent}Encoding: {b.encoding}")
                if level >= 3 and b.extra_config:
                    lines.append(f"{indent}{indent}{indent}Extra: {sorted(b.extra_config)}")
    return "\n".join(lines)


def check_command(args: argparse.Namespace) -> int:
    """`tidegate check`: 0 valid, 1 invalid (2 for usage errors, decided by argparse)."""
    if not args.watch:
        return _check(args)
    return _watch(args)


def _check(args: argparse.Namespace) -> int:
    code = check_once(args.config, debug=args.debug, indent=args.indent,
                      test_gateway=args.test_gateway)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _watch(args: argparse.Namespace) -> int:
    """Check now and again on every change, printing a fresh verdict each time (Ctrl-C ends)."""
    import asyncio

    from tidegate.config.loader import watch_targets
    from tidegate.reload.watcher import ConfigWatcher

    async def loop() -> None:
        folders, ignore = watch_targets(args.config, os.environ)
        watcher = ConfigWatcher(folders, ignore)  # watching before the first verdict
        _check(args)
        async for _ in watcher.changes():
            print("---", flush=True)
            _check(args)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(loop())
    return EXIT_OK
