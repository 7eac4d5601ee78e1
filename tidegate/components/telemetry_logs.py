"""``telemetry/logging``, ``telemetry/gelf`` and ``telemetry/logstash`` (service level).

They wrap no stage: the logs are the process's outputs, which every worker and the supervisor
switch to the settings of the generation they serve (`tidegate.telemetry.logging_setup`; the
settings are parsed, with located errors, when the generation is built). Registering them
tells `run` and `check` that tidegate acts on these sections.
"""

from __future__ import annotations

from typing import Any

from tidegate.components.seam import Build, Component, Level
from tidegate.telemetry.logging_config import GELF, LOGGING, LOGSTASH


def _build(ctx: Build[Any], inner: Any) -> Any:
    return inner


COMPONENTS: list[Component[Any]] = [
    Component(name, frozenset({Level.SERVICE}), _build, order=90)
    for name in (LOGGING, GELF, LOGSTASH)
]
