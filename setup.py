"""Builds the hot modules as C extensions with mypyc; pure Python wherever that cannot happen.

`pip install .` and wheels compile the modules in `COMPILED` (they are type-checked Python,
so mypyc turns them into C with the same behaviour: about a quarter fewer instructions per
proxied request, see bench/README.md). Editable installs (`pip install -e`, how tidegate is
developed and tested) stay pure Python, so that an edit to a module is what runs, never a
stale compiled copy; `tests/test_compiled.py` builds the extensions and runs the gateway on
them. Without a C compiler, or with TIDEGATE_PURE_PYTHON=1, the package installs as plain
Python and behaves the same, only slower.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The modules every proxied request runs through, in the order a request meets them.
COMPILED = [
    "tidegate/server/protocol.py",
    "tidegate/server/wire.py",
    "tidegate/pipeline/generation.py",
    "tidegate/pipeline/router.py",
    "tidegate/pipeline/client_ip.py",
    "tidegate/pipeline/endpoint.py",
    "tidegate/pipeline/merge.py",
    "tidegate/pipeline/flatmap.py",
    "tidegate/pipeline/manipulation.py",
    "tidegate/pipeline/static.py",
    "tidegate/pipeline/backend.py",
    "tidegate/upstream/target.py",
    "tidegate/upstream/connection.py",
    "tidegate/upstream/client.py",
    "tidegate/telemetry/access_log.py",
    "tidegate/telemetry/recorder.py",
    "tidegate/components/telemetry_metrics.py",
    # The traces' stages (a sampled request's spans are encoded as they end).
    "tidegate/components/telemetry_traces.py",
    "tidegate/telemetry/trace_spans.py",
    "tidegate/telemetry/otlp_encode.py",
    "tidegate/telemetry/logging_sinks.py",
    "tidegate/encoding/decoders.py",
    "tidegate/encoding/renderers.py",
    "tidegate/golang/url_values.py",
    "tidegate/golang/json_wire.py",
    # The components of the usual stack (JWT validation, CORS, an endpoint rate limit, the
    # security headers of `security/http`): each is a stage every request of its endpoints
    # runs through.
    "tidegate/components/jwt/component.py",
    "tidegate/components/jwt/verify.py",
    "tidegate/components/jwt/cache.py",
    "tidegate/components/jwt/claims.py",
    "tidegate/components/cors.py",
    "tidegate/components/ratelimit.py",
    "tidegate/components/secure_headers.py",
    # `validation/json-schema`: the stage and the one-pass decode every valid body takes.
    "tidegate/components/jsonschema_body.py",
    "tidegate/components/jsonschema_onepass.py",
]


# Commands that build code. Metadata (egg_info, dist_info) needs no compile, and an editable
# install (editable_wheel) must not get one.
BUILDS = {"build", "build_ext", "bdist_wheel", "bdist", "install"}


def _extensions() -> list[object]:
    if os.environ.get("TIDEGATE_PURE_PYTHON") == "1" or not BUILDS & set(sys.argv[1:]):
        return []
    try:
        from mypyc.build import mypycify

        extensions = mypycify(COMPILED, opt_level="3")
    except (ImportError, SystemExit, Exception) as exc:  # no mypy, or it refused the code
        print(f"tidegate: not compiling ({exc!r}); installing pure Python", file=sys.stderr)
        return []
    return list(extensions)


class AllOrNothing(build_ext):
    """Build every extension or none: mypyc's modules are shims over one shared library, so a
    shim without its library would fail at import. If any compile fails, what was built is
    removed and the package installs as pure Python."""

    def build_extensions(self) -> None:
        try:
            super().build_extensions()
        except Exception as exc:  # a compiler error, whichever class the toolchain raised
            for ext in self.extensions:
                built = self.get_ext_fullpath(ext.name)
                if os.path.exists(built):
                    os.remove(built)
            print(f"tidegate: not compiling ({exc}); installing pure Python", file=sys.stderr)


setup(ext_modules=_extensions(), cmdclass={"build_ext": AllOrNothing})
