"""The typed log settings of one configuration: `telemetry/logging`, `telemetry/gelf`,
`telemetry/logstash` and the router's access-log fields, with located errors.

Pure: a configuration's root ``extra_config`` in, a frozen `LogSettings` out. The supervisor and
every worker apply the settings of the generation they serve (`logging_setup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tidegate.errors import ConfigValueError
from tidegate.telemetry.logging_format import (
    DEFAULT_PATTERN,
    LOGSTASH_PATTERN,
    Pattern,
    compile_pattern,
)

LOGGING = "telemetry/logging"
GELF = "telemetry/gelf"
LOGSTASH = "telemetry/logstash"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# syslog facilities local0..local7 (RFC 5424: 16..23); KrakenD's default is local3.
FACILITIES = {f"local{i}": 16 + i for i in range(8)}
DEFAULT_FACILITY = "local3"
# The access log formats: KrakenD EE's `access_log_format` names ("" and "default" are gin's
# line, "json" one JSON object), plus tidegate's "logfmt".
ACCESS_FORMATS = {"": "gin", "default": "gin", "json": "json", "logfmt": "logfmt"}

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class AppLog:
    """How application log lines are written (a `telemetry/logging` section)."""

    level: str = "DEBUG"
    prefix: str = ""
    stdout: bool = False
    syslog: bool = False
    facility: int = FACILITIES[DEFAULT_FACILITY]
    pattern: Pattern = field(default_factory=lambda: compile_pattern(DEFAULT_PATTERN))
    # telemetry/logstash: each line is one JSON record, `module` being this name.
    logstash_module: str | None = None


@dataclass(frozen=True)
class Gelf:
    """Where Graylog listens (`telemetry/gelf`)."""

    host: str
    port: int
    tcp: bool


@dataclass(frozen=True)
class AccessLog:
    """The access log: on unless the router disables it, one line per request."""

    enabled: bool = True
    format: str = "gin"
    skip_paths: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LogSettings:
    """Everything about logs one configuration asks for. ``app`` None: no `telemetry/logging`
    section, tidegate's own log on stderr goes on."""

    app: AppLog | None = None
    gelf: Gelf | None = None
    access: AccessLog = AccessLog()


DEFAULT_SETTINGS = LogSettings()


def log_settings(extra_config: Mapping[str, Any]) -> LogSettings:
    """The settings of a root ``extra_config``; ConfigValueError names the offending key."""
    access = _access(extra_config)
    gelf = _gelf(extra_config.get(GELF)) if GELF in extra_config else None
    section = extra_config.get(LOGGING)
    logstash = _logstash(extra_config.get(LOGSTASH)) if LOGSTASH in extra_config else False
    if section is None:
        if logstash:
            raise ConfigValueError(f"{LOGSTASH} needs a {LOGGING} section (as in KrakenD): "
                                   "it writes through that logger", path=("extra_config",
                                                                           LOGSTASH))
        return LogSettings(None, gelf, access)
    app, access_format = _app(section, logstash)
    if access_format is not None:
        access = AccessLog(access.enabled, access_format, access.skip_paths)
    return LogSettings(app, gelf, access)


def _obj(raw: Any, path: JsonPath) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigValueError("must be an object", path=path)
    return raw


def _typed(section: Mapping[str, Any], key: str, kind: type, path: JsonPath,
           default: Any) -> Any:
    value = section.get(key, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        name = {bool: "a boolean", str: "a string", list: "a list"}[kind]
        raise ConfigValueError(f"`{key}` must be {name}", path=(*path, key))
    return value


def _app(raw: Any, logstash: bool) -> tuple[AppLog, str | None]:
    path: JsonPath = ("extra_config", LOGGING)
    section = _obj(raw, path)
    level = section.get("level")
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise ConfigValueError(f"`level` must be one of {', '.join(LEVELS)}",
                               path=(*path, "level"))
    prefix = _typed(section, "prefix", str, path, "")
    stdout = _typed(section, "stdout", bool, path, False)
    syslog = _typed(section, "syslog", bool, path, False)
    fname = _typed(section, "syslog_facility", str, path, DEFAULT_FACILITY)
    facility = FACILITIES.get(fname.lower())
    if facility is None:
        raise ConfigValueError(f"`syslog_facility` must be one of local0 .. local7, not "
                               f"{fname!r}", path=(*path, "syslog_facility"))
    fmt = _typed(section, "format", str, path, "default")
    if fmt in ("", "default"):
        pattern = compile_pattern(DEFAULT_PATTERN)
    elif fmt == "logstash":
        pattern, prefix = compile_pattern(LOGSTASH_PATTERN), ""
    elif fmt == "custom":
        custom = section.get("custom_format")
        if not isinstance(custom, str) or not custom:
            raise ConfigValueError("`format: custom` needs a `custom_format` pattern",
                                   path=(*path, "custom_format"))
        try:
            pattern = compile_pattern(custom)
        except ValueError as exc:
            raise ConfigValueError(str(exc), path=(*path, "custom_format")) from None
        prefix = ""
    else:
        raise ConfigValueError(f"`format` must be default, logstash or custom, not {fmt!r}",
                               path=(*path, "format"))
    module = None
    if logstash:
        # krakend-logstash takes the prefix as the records' module and writes no prefix.
        module, prefix = prefix or "KRAKEND", ""
        pattern = compile_pattern("%{message}")
    access_format = None
    if "access_log_format" in section:
        name = _typed(section, "access_log_format", str, path, "")
        access_format = ACCESS_FORMATS.get(name)
        if access_format is None:
            raise ConfigValueError(
                f"`access_log_format` {name!r} is not supported by tidegate: use default, json "
                "or logfmt", path=(*path, "access_log_format"))
    return AppLog(level.upper(), prefix, stdout, syslog, facility, pattern,
                  module), access_format


def _logstash(raw: Any) -> bool:
    path: JsonPath = ("extra_config", LOGSTASH)
    return bool(_typed(_obj(raw, path), "enabled", bool, path, False))


def _gelf(raw: Any) -> Gelf:
    path: JsonPath = ("extra_config", GELF)
    section = _obj(raw, path)
    address = _typed(section, "address", str, path, "")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigValueError(f"`address` must be host:port, not {address!r}",
                               path=(*path, "address"))
    tcp = _typed(section, "enable_tcp", bool, path, False)
    return Gelf(host.strip("[]") or "127.0.0.1", int(port), tcp)


def _access(extra_config: Mapping[str, Any]) -> AccessLog:
    path: JsonPath = ("extra_config", "router")
    router = extra_config.get("router")
    if not isinstance(router, Mapping):
        return AccessLog()
    disabled = _typed(router, "disable_access_log", bool, path, False)
    skip = _typed(router, "logger_skip_paths", list, path, [])
    for i, p in enumerate(skip):
        if not isinstance(p, str):
            raise ConfigValueError("must be a path", path=(*path, "logger_skip_paths", i))
    return AccessLog(not disabled, "gin", frozenset(skip))
