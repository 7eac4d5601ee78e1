"""`telemetry/logging` and `telemetry/logstash` over a real gateway: KrakenD's line formats on
stdout, a custom pattern, the switch on a reload, syslog received by the test, located errors."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, checkout_env, free_port, gateway, write_config
from tidegate.telemetry.logging_format import compile_pattern

DEFAULT_LINE = re.compile(r"^\[TG\] \d{4}/\d\d/\d\d - \d\d:\d\d:\d\d\.\d{3} \x1b\[36m▶ DEBUG"
                          r"\x1b\[0m SIGHUP: configuration unchanged")


def config(tmp: Path, extra: dict[str, Any]) -> Path:
    data = {"version": 3, "listen_ip": "127.0.0.1", "extra_config": extra, "endpoints": [{
        "endpoint": "/u", "backend": [{"host": ["http://127.0.0.1:9"], "url_pattern": "/x"}]}]}
    path = tmp / "krakend.json"
    write_config(path, data)
    return path


def test_default_then_custom_pattern_after_reload(tmp_path: Path) -> None:
    path = config(tmp_path, {"telemetry/logging": {"level": "DEBUG", "prefix": "[TG]",
                                                   "stdout": True}})
    port = free_port()
    with gateway(str(path), port, "--watch") as gw:
        # A worker's line (it listens once its first generation is in): the same format.
        worker = next((x for x in gw.log if "worker 0 accepts" in x), None) \
            or gw.wait_for("worker 0 accepts")
        assert re.match(r"^\[TG\] \d{4}/\d\d/\d\d - [\d:.]{12} \x1b\[36m▶ DEBUG\x1b\[0m "
                        r"worker 0 accepts in plain HTTP$", worker.rstrip("\n")), repr(worker)
        gw.proc.send_signal(signal.SIGHUP)
        line = gw.wait_for("configuration unchanged").rstrip("\n")
        assert DEFAULT_LINE.match(line), repr(line)
        config(tmp_path, {"telemetry/logging": {
            "level": "INFO", "stdout": True, "format": "custom",
            "custom_format": "<%{level:.4s}|%{module}|%{program}> %{message}"}})
        gw.wait_for("generation 2 active")
        gw.proc.send_signal(signal.SIGHUP)
        gw.proc.send_signal(signal.SIGTERM)  # its "stopped" line: INFO, after the reload's
        line = gw.wait_for("stopped").rstrip("\n")
        assert line == "<INFO|KRAKEND|tidegate> stopped"
        # INFO now: the unchanged reload (DEBUG) left no line in the custom format.
        assert not [x for x in gw.log if x.startswith("<DEBU")]


CUSTOM = {"telemetry/logging": {"level": "INFO", "stdout": True, "format": "custom",
                                "custom_format": "<%{level:.4s}|%{module}> %{message}"}}


def test_the_supervisor_announces_a_generation_in_its_log_format(tmp_path: Path) -> None:
    path = config(tmp_path, CUSTOM)
    port = free_port()
    with gateway(str(path), port, "--watch") as gw:
        config(tmp_path, {})  # back to tidegate's own format
        line = gw.wait_for("generation 2 active")
        assert not line.startswith("<"), repr(line)
        assert re.match(r"^\d{4}/\d\d/\d\d [\d:]{8} TIDEGATE \[INFO\] supervisor: ", line), \
            repr(line)
        config(tmp_path, {**CUSTOM, "telemetry/logstash": {"enabled": True}})
        record = json.loads(gw.wait_for("generation 3 active"))  # the new format at once
        assert "generation 3 active" in record["message"] and record["level"] == "INFO"


def test_logstash_json_lines(tmp_path: Path) -> None:
    path = config(tmp_path, {
        "telemetry/logging": {"level": "DEBUG", "prefix": "[SVC]", "stdout": True},
        "telemetry/logstash": {"enabled": True}})
    port = free_port()
    with gateway(str(path), port) as gw:
        gw.proc.send_signal(signal.SIGHUP)
        record = json.loads(gw.wait_for("configuration unchanged"))
        assert record["message"] == "SIGHUP: configuration unchanged (config " \
            f"{record['message'].split()[-1]}"
        assert record["@version"] == 1 and record["level"] == "DEBUG"
        assert record["module"] == "[SVC]" and record["host"] == socket.gethostname()
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$",
                        record["@timestamp"])


def test_syslog_receives_the_message(tmp_path: Path) -> None:
    sock_path = tmp_path / "syslog.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(20)
    path = config(tmp_path, {"telemetry/logging": {
        "level": "DEBUG", "prefix": "[TG]", "stdout": False, "syslog": True,
        "syslog_facility": "local5"}})
    port = free_port()
    try:
        with gateway(str(path), port, env={"TIDEGATE_SYSLOG_ADDRESS": str(sock_path)}) as gw:
            gw.proc.send_signal(signal.SIGHUP)
            while True:
                data = server.recv(65536).decode()
                if "configuration unchanged" in data:
                    break
            # local5 (21) * 8 + debug (7); Go's log/syslog framing with the prefix as tag.
            assert re.match(r"^<175>\w{3} [ \d]\d \d\d:\d\d:\d\d \[TG\]\[\d+\]: DEBUG > "
                            r"SIGHUP: configuration unchanged", data), data
            assert not [x for x in gw.log if "configuration unchanged" in x]  # no stdout
    finally:
        server.close()


@pytest.mark.parametrize(("extra", "where", "says"), [
    ({"telemetry/logging": {"level": "INFO", "format": "custom",
                            "custom_format": "%{foo} %{message}"}},
     'extra_config["telemetry/logging"].custom_format', "unknown variable %{foo}"),
    ({"telemetry/logging": {"level": "INFO", "format": "custom",
                            "custom_format": "%{callpath} %{message}"}},
     'extra_config["telemetry/logging"].custom_format', "%{callpath} verb is not supported"),
    ({"telemetry/logstash": {"enabled": True}},
     'extra_config["telemetry/logstash"]', "needs a telemetry/logging section"),
    ({"telemetry/logging": {"level": "INFO", "syslog_facility": "local9"}},
     'extra_config["telemetry/logging"].syslog_facility', "local0 .. local7"),
    ({"telemetry/gelf": {"address": "nowhere", "enable_tcp": False}},
     'extra_config["telemetry/gelf"].address', "host:port"),
])
def test_located_errors(tmp_path: Path, extra: dict[str, Any], where: str, says: str) -> None:
    path = config(tmp_path, extra)
    proc = subprocess.run([sys.executable, "-m", "tidegate", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT),
                          env=checkout_env())
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert f"{path}:" in out and where in out and says in out, out


def test_pattern_verbs() -> None:
    import logging
    record = logging.LogRecord("tidegate.server", logging.WARNING, "/x/protocol.py", 12,
                               "hello %s", ("go",), None, func="serve")
    record.created = 1_700_000_000.5
    pattern = compile_pattern("%{level:.4s} %{shortfile} %{shortfunc} %{shortpkg} "
                              "%{color:bold}%{message}%{color:reset} %{time:15:04:05.000}")
    text = pattern.render(record)
    assert text.startswith("WARN protocol.py:12 serve server \x1b[33;1mhello go\x1b[0m ")
    with pytest.raises(ValueError, match=r"no %\{verb\}"):
        compile_pattern("plain text")
