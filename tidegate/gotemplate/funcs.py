"""The function map of KrakenD's flexible config: builtins + Sprig 3.2.3 + marshal/include."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.files import read_regular
from tidegate.golang import json_values
from tidegate.golang.types import type_name

from .funcdef import ANY, STRING, GoError, GoFunc
from .funcs_builtin import BUILTINS
from .sprig.misc import go_join


def _sprig() -> dict[str, GoFunc]:
    from .sprig.crypto_certs import FUNCS as certs
    from .sprig.dicts import FUNCS as dicts
    from .sprig.encoding import FUNCS as encoding
    from .sprig.lists import FUNCS as lists
    from .sprig.math import FUNCS as math_
    from .sprig.misc import FUNCS as misc
    from .sprig.semver import FUNCS as semver
    from .sprig.strings import FUNCS as strings_
    from .sprig.time import FUNCS as time_

    out: dict[str, GoFunc] = {}
    for table in (strings_, lists, dicts, math_, encoding, certs, misc, time_, semver):
        out.update(table)
    return out


_SPRIG: dict[str, GoFunc] | None = None


def krakend_funcs(partials: str, read_log: list[str] | None = None,
                  env: Mapping[str, str] | None = None) -> dict[str, GoFunc]:
    """Builtins, then Sprig (shadowing `slice`), then KrakenD's marshal and include.

    `read_log` collects the partial files read (for hot reload); `env` replaces the process
    environment for ``env``/``expandenv``.
    """
    global _SPRIG
    if _SPRIG is None:
        _SPRIG = _sprig()
    funcs = dict(BUILTINS)
    funcs.update(_SPRIG)

    def marshal(v: Any) -> str:
        try:
            return json_values.encode(v)
        except json_values.JSONError:
            return ""

    def include(v: Any) -> str:
        if type(v) is not str:
            raise GoError(f"interface conversion: interface {{}} is {_iface_name(v)}, not string")
        path = go_join(partials, v)
        if read_log is not None:
            read_log.append(path)
        try:
            return read_regular(path or ".").decode("utf-8", "surrogateescape")
        except OSError:
            return ""

    if env is not None:
        from .sprig.misc import expandenv

        def env_(name: str) -> str:
            return env.get(name, "")

        funcs["env"] = GoFunc("env", env_, (STRING,), returns="string")
        funcs["expandenv"] = GoFunc("expandenv", lambda s: expandenv(s, env), (STRING,),
                                    returns="string")
    funcs["marshal"] = GoFunc("marshal", marshal, (ANY,), returns="string")
    funcs["include"] = GoFunc("include", include, (ANY,), returns="string")
    return funcs


def _iface_name(v: Any) -> str:
    return "nil" if v is None else type_name(v)
