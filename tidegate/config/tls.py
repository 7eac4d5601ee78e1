"""The root `tls` and `client_tls` sections: typed settings, and the files they name.

KrakenD reads certificates, keys and CA bundles from disk when it starts; tidegate reloads, so
the files are read once per build, by the supervisor (`attach_files`), and their content travels
with the configuration to the workers under `FILES_KEY`. Three things follow: the configuration
hash changes when a renewed certificate is saved (a reload is never skipped as "unchanged"),
every worker serves exactly the bytes that were validated, and a file half-written while a
worker builds cannot split the workers.

Go's names and numbers are kept: versions ``SSL3.0``/``TLS10``…``TLS13`` (both default to
``TLS13`` when the section is present, as lura's ``parseTLSVersion``), cipher suites by their
IANA number (mapped to OpenSSL's names; as in Go, TLS 1.3 suites are not configurable and their
numbers are accepted and ignored), curves by Go's ``CurveID``. What KrakenD silently turns into a
default or skips (an unknown version, an unknown suite, an unreadable CA file, a key that does
not match its certificate) is a located error here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.config.lua_sources import lua_sources
from tidegate.errors import ConfigErrors, ConfigValueError, JsonPath

# Where the supervisor puts the content of the files the configuration names ("@" keys are
# comments for KrakenD's schema and tidegate's lint: nobody reads it as a setting).
FILES_KEY = "@tidegate:files"
# A certificate, key or CA bundle larger than this is not one (the Mozilla bundle is ~220 KiB).
MAX_FILE_BYTES = 4 << 20

VERSIONS: dict[str, int] = {"SSL3.0": 0x0300, "TLS10": 0x0301, "TLS11": 0x0302,
                            "TLS12": 0x0303, "TLS13": 0x0304}
DEFAULT_VERSION = "TLS13"

# Go's cipher suite IDs (crypto/tls) → OpenSSL names, for TLS 1.0-1.2.
CIPHER_SUITES: dict[int, tuple[str, str]] = {
    0x0005: ("TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"),
    0x000A: ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"),
    0x002F: ("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    0x0035: ("TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"),
    0x003C: ("TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"),
    0x009C: ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
    0x009D: ("TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"),
    0xC007: ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"),
    0xC009: ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"),
    0xC00A: ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"),
    0xC011: ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"),
    0xC012: ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"),
    0xC013: ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
    0xC014: ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    0xC023: ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"),
    0xC027: ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"),
    0xC02F: ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    0xC02B: ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    0xC030: ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    0xC02C: ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
    0xCCA8: ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    0xCCA9: ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"),
}
# TLS 1.3 suites: always on, in Go as in OpenSSL; listing them changes nothing.
TLS13_SUITES = frozenset({0x1301, 0x1302, 0x1303})
# lura's defaultCipherSuites, used when the list is empty.
DEFAULT_CIPHER_SUITES = (0xC02F, 0xC02B, 0xC030, 0xC02C, 0xCCA8, 0xCCA9)

# Go's CurveID → OpenSSL group names.
CURVES: dict[int, str] = {23: "P-256", 24: "P-384", 25: "P-521", 29: "X25519"}
# lura's defaultCurves (CurveP521, CurveP384, CurveP256), used when the list is empty.
DEFAULT_CURVES = (25, 24, 23)


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A certificate chain with its private key, as PEM text, and the names it serves."""

    cert_pem: str
    key_pem: str
    names: tuple[str, ...]  # DNS names of the leaf's subjectAltName (for SNI)


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """What a server and a client section share."""

    min_version: int
    max_version: int
    ciphers: tuple[str, ...]  # OpenSSL names, TLS 1.0-1.2
    curves: tuple[str, ...]  # OpenSSL group names, in order of preference
    ca_pems: tuple[str, ...]
    system_ca: bool


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """The root `tls` section, when enabled: the listener speaks TLS only."""

    keys: tuple[KeyPair, ...]
    options: TLSOptions
    mtls: bool
    # The certificates of `keys[]` are trusted for client certificates too, as lura does.
    keys_as_ca: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientTLS:
    """The root `client_tls` section (and the legacy root `allow_insecure_connections`)."""

    options: TLSOptions | None  # None: Go's default transport (system CAs, TLS 1.2+)
    insecure: bool
    cert: KeyPair | None  # the first of client_certs: OpenSSL presents one per connection


# --- the files the sections name ---------------------------------------------------------

def named_files(data: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """Every certificate, key and CA file the root `tls` (when enabled) and `client_tls`
    sections name, and every Lua source, with the JSON path of the name."""
    out: list[tuple[JsonPath, str]] = []
    tls = data.get("tls")
    if isinstance(tls, Mapping) and tls.get("disabled") is not True:
        for key in ("public_key", "private_key"):
            if isinstance(tls.get(key), str) and tls[key]:
                out.append((("tls", key), tls[key]))
        for i, pair in enumerate(_list(tls.get("keys"))):
            if isinstance(pair, Mapping):
                out += [(("tls", "keys", i, k), pair[k]) for k in ("public_key", "private_key")
                        if isinstance(pair.get(k), str) and pair[k]]
        out += _strings(tls.get("ca_certs"), ("tls", "ca_certs"))
    client = data.get("client_tls")
    if isinstance(client, Mapping):
        out += _strings(client.get("ca_certs"), ("client_tls", "ca_certs"))
        for i, pair in enumerate(_list(client.get("client_certs"))):
            if isinstance(pair, Mapping):
                out += [(("client_tls", "client_certs", i, k), pair[k])
                        for k in ("certificate", "private_key")
                        if isinstance(pair.get(k), str) and pair[k]]
    return out + lua_sources(data)  # scripts travel and reload the same way


def watched_files(data: Mapping[str, Any]) -> list[str]:
    """The absolute paths of those files (what `--watch` follows besides the config)."""
    return sorted({os.path.abspath(name) for _, name in named_files(data)})


def attach_files(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the content of every file it names under `FILES_KEY`; an unreadable file
    is a ConfigValueError at the path that names it. Relative names are read from the working
    directory, as KrakenD does."""
    if FILES_KEY in data:
        raise ConfigValueError(f"`{FILES_KEY}` is reserved by tidegate", path=(FILES_KEY,))
    files: dict[str, str] = {}
    errors: list[ConfigValueError] = []
    # A Lua source that cannot be read is reported by the Lua component itself, inside its
    # section, where the fail-closed opt-out can leave that section out (as KrakenD serves
    # without it); it is still watched, so creating it reloads.
    scripts = {path for path, _ in lua_sources(data)}
    for path, name in named_files(data):
        if name in files:
            continue
        try:
            files[name] = _read(name)
        except (OSError, ValueError) as exc:
            if path in scripts:
                continue
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            errors.append(ConfigValueError(f"cannot read {name!r}: {reason}", path=path))
    if errors:
        raise ConfigErrors(errors)
    if not files:
        return data
    return {**data, FILES_KEY: files}


def _read(name: str) -> str:
    """A regular file's text; FIFOs and devices are refused before reading (a read would
    block the build)."""
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("not a PEM file (binary content; DER must be converted to PEM)") \
            from None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any, path: JsonPath) -> list[tuple[JsonPath, str]]:
    return [((*path, i), v) for i, v in enumerate(_list(value)) if isinstance(v, str) and v]


# --- typed settings ----------------------------------------------------------------------

def server_tls(data: Mapping[str, Any]) -> ServerTLS | None:
    """The listener's TLS, None when there is no `tls` section or it is `disabled`; raises
    ConfigErrors listing every problem. Reads the files' content from `FILES_KEY`."""
    section = data.get("tls")
    if section is None or section == {}:
        return None
    errors: list[ConfigValueError] = []
    r = _Section(section, ("tls",), errors)
    if not r.ok:
        raise _errors(errors)
    if r.boolean("disabled"):
        return None
    files = _files(data)
    pairs: list[tuple[JsonPath, str, str]] = []
    listed = r.items("keys")
    for i, item in enumerate(listed):
        k = _Section(item, ("tls", "keys", i), errors)
        pairs.append((("tls", "keys", i), k.string("public_key"), k.string("private_key")))
    legacy = (r.string("public_key"), r.string("private_key"))
    if any(legacy):
        pairs.append((("tls",), *legacy))
    if not pairs and not errors:
        errors.append(ConfigValueError(
            "no certificate: set `keys` (a list of {public_key, private_key}) or "
            "`public_key` and `private_key`", path=("tls",)))
    keys = []
    for path, public, private in pairs:
        pair = _key_pair(path, "public_key", public, "private_key", private, files, errors)
        if pair is not None:
            keys.append(pair)
    options = _options(r, files, errors, client=False)
    mtls = r.boolean("enable_mtls")
    # lura trusts the certificates of `keys[]` for client certificates (not the legacy pair).
    keys_as_ca = tuple(p.cert_pem for p in keys[:len(listed)]) if mtls else ()
    if mtls and options is not None and not (options.system_ca or options.ca_pems
                                             or keys_as_ca):
        errors.append(ConfigValueError(
            "enable_mtls with disable_system_ca_pool and no ca_certs: no client certificate "
            "could ever be verified", path=("tls", "enable_mtls")))
    if errors:
        raise _errors(errors)
    assert options is not None
    return ServerTLS(tuple(keys), options, mtls, keys_as_ca)


def client_tls(data: Mapping[str, Any]) -> ClientTLS | None:
    """How backends are reached over https; None for Go's default transport."""
    section = data.get("client_tls")
    legacy_insecure = data.get("allow_insecure_connections")
    errors: list[ConfigValueError] = []
    if legacy_insecure is not None and not isinstance(legacy_insecure, bool):
        errors.append(ConfigValueError(f"expected a boolean, got {_kind(legacy_insecure)}",
                                       path=("allow_insecure_connections",)))
    if section is None:
        if errors:
            raise _errors(errors)
        return ClientTLS(None, True, None) if legacy_insecure is True else None
    r = _Section(section, ("client_tls",), errors)
    if not r.ok:
        raise _errors(errors)
    files = _files(data)
    options = _options(r, files, errors, client=True)
    cert = None
    for i, item in enumerate(r.items("client_certs")):
        c = _Section(item, ("client_tls", "client_certs", i), errors)
        pair = _key_pair(("client_tls", "client_certs", i), "certificate", c.string(
            "certificate"), "private_key", c.string("private_key"), files, errors)
        cert = cert or pair
    insecure = r.boolean("allow_insecure_connections") or legacy_insecure is True
    if errors:
        raise _errors(errors)
    return ClientTLS(options, insecure, cert)


def _files(data: Mapping[str, Any]) -> Mapping[str, str]:
    files = data.get(FILES_KEY)
    return files if isinstance(files, Mapping) else {}


def _errors(errors: list[ConfigValueError]) -> ConfigErrors:
    return ConfigErrors(errors)


def _kind(value: Any) -> str:
    from tidegate.config.sources import describe

    return describe(value)


class _Section:
    """Typed reads out of one object, each error located at its JSON path."""

    def __init__(self, data: Any, path: JsonPath, errors: list[ConfigValueError]) -> None:
        self.path = path
        self.errors = errors
        self.ok = isinstance(data, Mapping)
        self.data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        if not self.ok:
            self.fail(None, f"expected an object, got {_kind(data)}")

    def fail(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else (*self.path, key)
        self.errors.append(ConfigValueError(message, path=path))

    def boolean(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(key, f"expected a boolean, got {_kind(value)}")
            return False
        return value

    def string(self, key: str) -> str:
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_kind(value)}")
            return ""
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(key, f"expected a list, got {_kind(value)}")
            return []
        return value

    def integers(self, key: str) -> list[tuple[int, int]] | None:
        """(index, value) of each integer of a list (None when unset or empty); anything
        else is an error."""
        items = self.items(key)
        if not items:
            return None
        out = []
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
                self.errors.append(ConfigValueError(f"expected an integer, got {_kind(v)}",
                                                    path=(*self.path, key, i)))
            else:
                out.append((i, int(v)))
        return out

    def version(self, key: str) -> int | None:
        value = self.string(key) or DEFAULT_VERSION
        if value not in VERSIONS:
            self.fail(key, f"unknown TLS version {value!r}: expected one of "
                           f"{', '.join(VERSIONS)} (KrakenD would silently use TLS13)")
            return None
        return VERSIONS[value]


def _options(r: _Section, files: Mapping[str, str], errors: list[ConfigValueError], *,
             client: bool) -> TLSOptions | None:
    before = len(errors)
    low, high = r.version("min_version"), r.version("max_version")
    if low is None or high is None:
        pass
    elif low > high:
        r.fail("max_version", f"max_version {_name(high)} is below min_version {_name(low)} "
                              f"(both default to TLS13): no TLS version is left")
    elif high == VERSIONS["SSL3.0"]:
        r.fail("max_version", "SSL3.0 is not supported (by Go since 1.14, nor by OpenSSL): "
                              "no TLS version is left")
    ciphers: list[str] = []
    suites = r.integers("cipher_suites")
    for i, suite in suites or ():
        if suite in TLS13_SUITES:
            continue
        known = CIPHER_SUITES.get(suite)
        if known is None:
            errors.append(ConfigValueError(
                f"unknown cipher suite {suite} (0x{suite:04X}): expected one of Go's IANA "
                f"numbers ({', '.join(str(s) for s in sorted(CIPHER_SUITES))}, "
                f"or 4865-4867 for TLS 1.3)", path=(*r.path, "cipher_suites", i)))
        elif known[1] not in ciphers:
            ciphers.append(known[1])
    if suites is None:
        ciphers = [CIPHER_SUITES[s][1] for s in DEFAULT_CIPHER_SUITES]
    curves: list[str] = []
    preferred = r.integers("curve_preferences")
    for i, curve in preferred or ():
        name = CURVES.get(curve)
        if name is None:
            errors.append(ConfigValueError(
                f"unknown curve {curve}: expected 23 (P-256), 24 (P-384), 25 (P-521) or "
                f"29 (X25519)", path=(*r.path, "curve_preferences", i)))
        elif name not in curves:
            curves.append(name)
    if preferred is None:
        curves = [CURVES[c] for c in DEFAULT_CURVES]
    cas = []
    for i, name in enumerate(r.items("ca_certs")):
        if not isinstance(name, str) or not name:
            errors.append(ConfigValueError(f"expected a file name, got {_kind(name)}",
                                           path=(*r.path, "ca_certs", i)))
            continue
        pem = files.get(name)
        if pem is None:  # not read (the loader reported why)
            continue
        problem = _pem_problem(pem, "CERTIFICATE")
        if problem:
            errors.append(ConfigValueError(f"{name!r}: {problem}",
                                           path=(*r.path, "ca_certs", i)))
        else:
            cas.append(pem)
    system = not r.boolean("disable_system_ca_pool")
    r.boolean("prefer_server_cipher_suites")  # Go ignores it since 1.18; so does tidegate
    if client:
        r.boolean("allow_insecure_connections")
    if len(errors) > before or low is None or high is None:
        return None
    return TLSOptions(low, high, tuple(ciphers), tuple(curves), tuple(cas), system)


def _name(version: int) -> str:
    return next(k for k, v in VERSIONS.items() if v == version)


def _key_pair(path: JsonPath, cert_key: str, cert_name: str, key_key: str, key_name: str,
              files: Mapping[str, str], errors: list[ConfigValueError]) -> KeyPair | None:
    """A certificate and its key, checked with `cryptography`: both parse, the key is not
    encrypted, and it is the key of the certificate."""
    if not cert_name:
        errors.append(ConfigValueError(f"missing {cert_key}: the certificate file (PEM)",
                                       path=(*path, cert_key)))
    if not key_name:
        errors.append(ConfigValueError(f"missing {key_key}: the private key file (PEM)",
                                       path=(*path, key_key)))
    cert_pem, key_pem = files.get(cert_name), files.get(key_name)
    if cert_pem is None or key_pem is None:  # missing, or not read (reported by the loader)
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    problem = _pem_problem(cert_pem, "CERTIFICATE")
    if problem:
        errors.append(ConfigValueError(f"{cert_name!r}: {problem}", path=(*path, cert_key)))
        return None
    leaf = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        errors.append(ConfigValueError(f"{key_name!r}: the private key is encrypted "
                                       "(KrakenD cannot read it either)", path=(*path, key_key)))
        return None
    except (ValueError, Exception) as exc:  # cryptography's UnsupportedAlgorithm too
        errors.append(ConfigValueError(f"{key_name!r}: not a PEM private key ({exc})",
                                       path=(*path, key_key)))
        return None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        errors.append(ConfigValueError(
            f"{key_name!r} is not the private key of {cert_name!r} "
            "(tls: private key does not match public key)", path=(*path, key_key)))
        return None
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return KeyPair(cert_pem, key_pem, names)


def _pem_problem(pem: str, kind: str) -> str | None:
    """Why `pem` is not a list of PEM certificates, or None."""
    from cryptography import x509

    if f"-----BEGIN {kind}-----" not in pem:
        return f"no PEM {kind.lower()} found (expected -----BEGIN {kind}-----)"
    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        return f"not a valid PEM certificate ({exc})"
    return None
