"""Command line: `tidegate run | check | audit | schema | render | version`, with KrakenD's
flag habits.

This is the only module that decides exit codes: 0 success, 1 invalid configuration, failed run
or audit findings at the selected severities, 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

ALLOW_ENV = "TIDEGATE_ALLOW_UNIMPLEMENTED"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tidegate",
        description="API gateway for KrakenD configurations, with hot reload that drops nothing.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="serve a configuration")
    run.add_argument("-c", "--config", help="configuration file (default: built-in demo)")
    run.add_argument("-p", "--port", type=int, help="listening port (overrides the config)")
    run.add_argument("-d", "--debug", action="store_true", help="enable the /__debug/ endpoint")
    run.add_argument("-w", "--watch", action="store_true",
                     help="reload the configuration whenever its files change")
    run.add_argument("--workers", type=int, default=None,
                     help="worker processes (default: number of CPUs)")
    _allow_flag(run)

    check = sub.add_parser("check", help="validate a configuration")
    check.add_argument("-c", "--config", required=True, help="configuration file")
    check.add_argument("-d", "--debug", action="count", default=0,
                       help="print what was understood (-d, -dd, -ddd for more detail)")
    check.add_argument("-i", "--indent", default="\t", help="indentation of -d output")
    check.add_argument("-t", "--test-gateway", action="store_true",
                       help="build the whole gateway and bind its port for a moment")
    check.add_argument("-l", "--lint", action="store_true",
                       help="lint against the built-in schema (see `tidegate schema`)")
    check.add_argument("-n", "--lint-no-network", action="store_true",
                       help="lint against the built-in schema (same as -l: there is no network)")
    check.add_argument("-s", "--lint-schema", metavar="FILE",
                       help="lint against this JSON Schema file instead")
    check.add_argument("-w", "--watch", action="store_true",
                       help="check again on every change of the configuration files")
    _allow_flag(check)

    audit = sub.add_parser("audit", help="security recommendations for a configuration")
    audit.add_argument("-c", "--config", required=True, help="configuration file")
    audit.add_argument("-i", "--ignore", metavar="RULES",
                       help="rules to ignore, comma-separated (e.g. 1.2.1,5.1.2)")
    audit.add_argument("-I", "--ignore-file", metavar="FILE",
                       help="file listing rules to ignore, one per line")
    audit.add_argument("-s", "--severity", default="CRITICAL,HIGH,MEDIUM,LOW",
                       help="one level is a threshold (HIGH: HIGH and CRITICAL); a "
                            "comma-separated list selects exactly those levels")
    audit.add_argument("-f", "--format", default="text",
                       help="text, json, or a Go template as KrakenD takes it (written to "
                            "stderr as KrakenD does), e.g. '{{ marshal . }}'")

    schema = sub.add_parser("schema", help="print the built-in JSON Schema used by check -l")
    schema.add_argument("-i", "--indent", type=int, default=2, help="JSON indentation")

    render = sub.add_parser("render", help="render a Go text/template (flexible configuration)",
                            add_help=False)
    render.add_argument("args", nargs=argparse.REMAINDER)

    sub.add_parser("version", help="print versions")
    return parser


def _allow_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-unimplemented", action="append", default=[], metavar="NAME",
        help="DEVELOPMENT ONLY: serve although the config asks for a protection tidegate does "
             "not implement (a namespace such as auth/validator); "
             "repeatable; also TIDEGATE_ALLOW_UNIMPLEMENTED=a,b")


def _allowed(args: argparse.Namespace) -> frozenset[str]:
    """The fail-closed opt-outs of the flag and the environment; raises UnknownName."""
    from tidegate.lint.failclosed import parse_allowed

    env = os.environ.get(ALLOW_ENV, "")
    return parse_allowed([*args.allow_unimplemented, env])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tidegate` command; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    if args_list and args_list[0] == "render":
        from tidegate.gotemplate.cli import main as render_main

        return render_main(args_list[1:])
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command == "version":
        return _version()
    if args.command in ("run", "check"):
        from tidegate.lint.failclosed import UnknownName

        try:
            args.allow_unimplemented = _allowed(args)
        except UnknownName as exc:
            print(f"tidegate {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.command == "run":
        from tidegate.server.supervisor import run_command

        return run_command(args)
    if args.command == "check":
        from tidegate.checker import check_command

        return check_command(args)
    if args.command == "audit":
        from tidegate.checker import audit_command

        return audit_command(args)
    if args.command == "schema":
        from tidegate.checker import schema_command

        return schema_command(args)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _version() -> int:
    import platform

    from tidegate import KRAKEND_COMPAT_VERSION, __version__

    print(f"tidegate {__version__}")
    print(f"KrakenD config compatibility: {KRAKEND_COMPAT_VERSION} (config version 3)")
    print(f"Python {platform.python_version()} ({platform.python_implementation()})")
    return EXIT_OK
