"""`tidegate check`: validate a configuration exactly as `run` would, then say so.

The check builds the whole generation (the same `build_candidate` a reload runs), so "Syntax OK!"
means `run` will serve it. `-l`/`-n` also lint the file against tidegate's built-in schema (there
is no network: both flags use it), `-s FILE` against a user's schema; `-t` binds the port for a
moment; `-d/-dd/-ddd` print what was understood.

Every problem is one line on stderr, with file:line:col and JSON path, in file order:
``ERROR parsing …`` (what `run` would refuse), ``ERROR linting …`` (what only the schema
refuses: `run` would ignore it), ``WARNING: …`` (accepted, but ignored by tidegate).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from tidegate.config import sources
from tidegate.errors import (
    ConfigBuildError,
    ConfigError,
    ConfigErrors,
    ConfigIOError,
    ConfigSyntaxError,
    TemplateError,
)
from tidegate.lint.describe import describe_service
from tidegate.reload.builder import Candidate, build_candidate, unprotected_lines

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

__all__ = ["audit_command", "check_command", "check_once", "describe_service", "schema_command"]


class _UsageError(Exception):
    """A flag that cannot work (exit 2), as opposed to an invalid configuration (exit 1)."""


def check_once(path: str, *, debug: int = 0, indent: str = "\t", test_gateway: bool = False,
               lint: bool = False, lint_schema: str | None = None,
               env: Mapping[str, str] | None = None, out: TextIO | None = None,
               err: TextIO | None = None,
               allow_unimplemented: frozenset[str] = frozenset()) -> int:
    """One verdict on stdout/stderr; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    env = os.environ if env is None else env
    try:
        validator = _validator(lint, lint_schema)
    except _UsageError as exc:
        print(f"ERROR: {exc}", file=err)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"ERROR reading the lint schema: {exc}", file=err)
        return EXIT_INVALID

    candidate: Candidate | None = None
    build_errors: list[ConfigError] = []
    try:
        candidate = build_candidate(path, dict(env), port=None, debug=False,
                                    allow_unimplemented=allow_unimplemented)
    except ConfigError as exc:
        if _unparsable(exc):
            print(f"ERROR parsing the configuration file: {exc}", file=err)
            return EXIT_INVALID
        build_errors = list(exc.errors) if isinstance(exc, ConfigErrors) else [exc]

    doc = candidate.loaded.document if candidate else _document(path, env)
    lines = _problem_lines(doc, build_errors, validator)
    if candidate is not None and debug:
        print(describe_service(candidate.loaded.service, debug, indent, path), file=out)
    if candidate is not None:
        # The loudest warnings first: what is served without the protection it asks for.
        lines[:0] = [((0, 0), f"WARNING: {line}") for line in unprotected_lines(candidate)]
    for _, text in lines:
        print(text, file=err)
    if any(text.startswith("ERROR") for _, text in lines):
        return EXIT_INVALID
    assert candidate is not None
    if test_gateway:
        problem = _try_bind(candidate)
        if problem:
            print(f"ERROR testing the configuration: {problem}", file=err)
            return EXIT_INVALID
    print("Syntax OK!", file=out)
    return EXIT_OK


def _unparsable(exc: ConfigError) -> bool:
    """Syntax, I/O, template and build failures leave nothing to lint: reported alone."""
    first = exc.errors[0] if isinstance(exc, ConfigErrors) else exc
    return isinstance(first, ConfigSyntaxError | ConfigIOError | TemplateError
                      | ConfigBuildError)


def _validator(lint: bool, lint_schema: str | None) -> Any:
    from tidegate.lint.linter import builtin_validator, validator_for

    if lint_schema:
        if lint_schema.startswith(("http://", "https://")):
            raise _UsageError("tidegate lints without network: download the schema and pass "
                              "its path to -s")
        import jsonschema

        doc = sources.load_file(lint_schema) if sources.EXTENSIONS.get(
            os.path.splitext(lint_schema)[1].lower()) else _json_file(lint_schema)
        try:
            return validator_for(doc.data)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise ConfigError(f"not a valid JSON Schema at {where}: {exc.message}",
                              file=lint_schema) from None
    return builtin_validator() if lint else None


def _json_file(path: str) -> sources.Document:
    """A schema file without a known extension is read as JSON."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigIOError(f"cannot read the schema: {exc.strerror or exc}",
                            file=path) from exc
    return sources.parse_text(text, path, "json")


def _document(path: str, env: Mapping[str, str]) -> sources.Document:
    """The parsed file (rendered first with flexible configuration), as the loader reads it.

    Only called after `build_candidate` parsed it successfully, so it cannot fail here.
    """
    from tidegate.config.flexible import FlexibleEnv

    if FlexibleEnv.read(env).enabled:
        from tidegate.config.loader import load_flexible

        return load_flexible(path, env)
    return sources.load_file(path)


def _problem_lines(doc: sources.Document, build_errors: list[ConfigError],
                   validator: Any) -> list[tuple[tuple[int, int], str]]:
    """Every line to print, sorted by position in the file."""
    from tidegate.config.loader import locate_error
    from tidegate.lint.linter import ERROR, lint, locate, walk

    lines: list[tuple[tuple[int, int], str]] = []
    for e in build_errors:
        locate_error(e, doc)
        lines.append(((e.line or 0, e.col or 0), f"ERROR parsing the configuration file: {e}"))
    seen = {e.path for e in build_errors}
    if validator is not None:
        issues = lint(doc.data, validator, doc)
    else:
        issues = locate(walk(doc.data), doc)
        for issue in issues:
            issue.severity = "warning"  # without -l, `run` would ignore them: not fatal
    for issue in issues:
        pos = (issue.error.line or 0, issue.error.col or 0)
        if issue.severity == ERROR:
            if issue.path not in seen:  # the model's own words win for the same value
                lines.append((pos, f"ERROR linting the configuration file: {issue}"))
        else:
            lines.append((pos, f"WARNING: {issue}"))
    lines.sort(key=lambda item: item[0])
    return lines


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


def check_command(args: argparse.Namespace) -> int:
    """`tidegate check`: 0 valid, 1 invalid (2 for usage errors, decided by argparse)."""
    if not args.watch:
        return _check(args)
    return _watch(args)


def _check(args: argparse.Namespace) -> int:
    code = check_once(args.config, debug=args.debug, indent=args.indent,
                      test_gateway=args.test_gateway,
                      lint=args.lint or args.lint_no_network, lint_schema=args.lint_schema,
                      allow_unimplemented=args.allow_unimplemented)
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


def schema_command(args: argparse.Namespace) -> int:
    """`tidegate schema`: print the built-in JSON Schema."""
    from tidegate.lint.schema import build_schema

    print(json.dumps(build_schema(), indent=args.indent, ensure_ascii=False))
    return EXIT_OK


def audit_command(args: argparse.Namespace) -> int:
    """`tidegate audit`: 0 no finding at or above the severity, 1 findings or an invalid
    configuration, 2 usage error."""
    from tidegate.config.loader import load_config
    from tidegate.lint.audit import RULE_IDS, audit, format_finding, parse_severities

    try:
        severities = parse_severities(args.severity)
    except ValueError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ignore = [r.strip() for r in (args.ignore or "").split(",") if r.strip()]
    if args.ignore_file:
        try:
            with open(args.ignore_file, encoding="utf-8") as fh:
                ignore += [line.strip() for line in fh if line.strip()
                           and not line.lstrip().startswith("#")]
        except OSError as exc:
            print(f"ERROR reading the ignore file {args.ignore_file}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    unknown = sorted(set(ignore) - RULE_IDS)
    if unknown:
        print(f"ERROR: unknown rule(s) to ignore: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        loaded = load_config(args.config, os.environ, tls_files=False)
    except ConfigError as exc:
        print(f"ERROR parsing the configuration file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    findings = audit(loaded.service, ignore=ignore, severities=severities)
    if args.format not in ("text", "json"):
        from tidegate.lint.audit_format import AuditFormatError, render

        try:
            sys.stderr.write(render(args.format, findings))
        except AuditFormatError as exc:
            print(exc, file=sys.stderr)
            return EXIT_INVALID
        return EXIT_INVALID if findings else EXIT_OK
    if args.format == "json":
        print(json.dumps({"recommendations": [f.to_dict() for f in findings], "stats": {}},
                         indent=2))
    else:
        for finding in findings:
            print(format_finding(finding))
    sys.stdout.flush()
    if findings:
        print(f"audit: {len(findings)} recommendation(s) at the selected severities",
              file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK
