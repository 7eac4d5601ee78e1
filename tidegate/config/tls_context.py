"""`ssl.SSLContext`s from the typed `tls` / `client_tls` settings (stdlib `ssl`, OpenSSL).

Built from memory: the validated PEM text travels with the configuration, so nothing is read
from disk here. OpenSSL loads a certificate chain only from a file, so the chain and key are
handed to it through an anonymous in-memory file (`memfd_create`; a private temporary folder
where that does not exist) that is gone as soon as it is loaded.

Several `keys` are served by SNI: one context per key pair, all with the same settings, and a
servername callback on the first that switches a connection to the pair whose certificate
names the requested host (exact name, then a one-label wildcard), else keeps the first, as
Go's `getCertificate` does.

Curve preferences: Python's `ssl` sets one curve only (`set_ecdh_curve`); a list is given to
OpenSSL's `SSL_CTX_set1_groups_list` through the context's own pointer, after checking that
the pointer reads back the context's options (so a different interpreter layout is refused
with an error, never guessed).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import ssl
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from tidegate.config.tls import (
    ClientTLS,
    KeyPair,
    ServerTLS,
    TLSOptions,
    client_tls,
    server_tls,
)
from tidegate.errors import ConfigErrors, ConfigValueError

_TLS_VERSIONS = {0x0300: ssl.TLSVersion.SSLv3, 0x0301: ssl.TLSVersion.TLSv1,
                 0x0302: ssl.TLSVersion.TLSv1_1, 0x0303: ssl.TLSVersion.TLSv1_2,
                 0x0304: ssl.TLSVersion.TLSv1_3}


class TLSContextError(ValueError):
    """OpenSSL refused a setting (the message says which)."""


def server_contexts(settings: ServerTLS) -> ssl.SSLContext:
    """The listener's context (the first key pair's; the others are switched to by SNI)."""
    contexts = [_server_context(settings, pair) for pair in settings.keys]
    first = contexts[0]
    if len(contexts) > 1:
        by_name = _names(settings.keys, contexts)

        def pick(sslobj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
            chosen = _match(by_name, name) if name else None
            if chosen is not None and chosen is not ctx:
                sslobj.context = chosen

        first.sni_callback = pick
    return first


def _server_context(settings: ServerTLS, pair: KeyPair) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply(ctx, settings.options)
    _load_chain(ctx, pair)
    ctx.set_alpn_protocols(["http/1.1"])  # HTTP/2 over TLS is not offered
    if settings.mtls:
        ctx.verify_mode = ssl.CERT_REQUIRED  # Go's RequireAndVerifyClientCert
        if settings.options.system_ca:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        for pem in (*settings.options.ca_pems, *settings.keys_as_ca):
            ctx.load_verify_locations(cadata=pem)
    return ctx


def client_context(settings: ClientTLS | None) -> ssl.SSLContext:
    """The context of https backends: Go's default transport without `client_tls`."""
    if settings is None or settings.options is None:
        ctx = ssl.create_default_context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        _apply(ctx, settings.options)
        if settings.options.system_ca:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        for pem in settings.options.ca_pems:
            ctx.load_verify_locations(cadata=pem)
        if settings.cert is not None:
            _load_chain(ctx, settings.cert)
    if settings is not None and settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _apply(ctx: ssl.SSLContext, options: TLSOptions) -> None:
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, and asked for explicitly
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = _TLS_VERSIONS[options.min_version]
        ctx.maximum_version = _TLS_VERSIONS[options.max_version]
    if options.min_version < 0x0304:  # TLS 1.3 suites are not configurable (as in Go)
        missing = [name for name in options.ciphers if not _available(ctx, name)]
        if missing:
            raise TLSContextError(f"cipher suite {', '.join(missing)} is not available in "
                                  f"{ssl.OPENSSL_VERSION}")
        # OpenSSL 3 allows TLS 1.0 and 1.1 only at security level 0: asked for explicitly
        # (min_version TLS10/TLS11), they are given, as Go gives them (`audit` flags it).
        level = ":@SECLEVEL=0" if options.min_version < 0x0303 else ""
        ctx.set_ciphers(":".join(options.ciphers) + level)
    _set_groups(ctx, options.curves)


def _available(ctx: ssl.SSLContext, name: str) -> bool:
    try:
        ctx.set_ciphers(name)
    except ssl.SSLError:
        return False
    return True


def check_tls(data: Mapping[str, Any]) -> list[ConfigValueError]:
    """Every problem of the `tls` and `client_tls` sections, OpenSSL's refusals included (the
    contexts are built and thrown away): what `run`, `check` and every reload report."""
    errors: list[ConfigValueError] = []
    for section, build in (("tls", _check_server), ("client_tls", _check_client)):
        try:
            build(data)
        except ConfigErrors as exc:
            errors += [e for e in exc.errors if isinstance(e, ConfigValueError)]
        except TLSContextError as exc:
            errors.append(ConfigValueError(str(exc), path=(section,)))
    return errors


def _check_server(data: Mapping[str, Any]) -> None:
    settings = server_tls(data)
    if settings is not None:
        server_contexts(settings)


def _check_client(data: Mapping[str, Any]) -> None:
    settings = client_tls(data)
    if settings is not None:
        client_context(settings)


def _set_groups(ctx: ssl.SSLContext, groups: tuple[str, ...]) -> None:
    if len(groups) == 1:
        ctx.set_ecdh_curve({"P-256": "prime256v1", "P-384": "secp384r1",
                            "P-521": "secp521r1"}.get(groups[0], groups[0]))
        return
    lib, pointer = _openssl(ctx)
    if lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, ":".join(groups).encode()) != 1:
        raise TLSContextError(f"OpenSSL refused the curves {', '.join(groups)}")


_SSL_CTRL_SET_GROUPS_LIST = 92


def _openssl(ctx: ssl.SSLContext) -> tuple[ctypes.CDLL, int]:
    """libssl (as linked by Python's `_ssl`) and the context's `SSL_CTX *`, checked."""
    try:
        lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        lib.SSL_CTX_get_options  # noqa: B018 - present, or this build hides OpenSSL
        lib.SSL_CTX_ctrl  # noqa: B018
    except (OSError, AttributeError):
        raise TLSContextError("several curve_preferences cannot be set with this Python "
                              "build; list one curve") from None
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    # PySSLContext starts with PyObject_HEAD, then `SSL_CTX *ctx`.
    pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not pointer or lib.SSL_CTX_get_options(pointer) != ctx.options:
        raise TLSContextError("several curve_preferences cannot be set with this Python "
                              "build; list one curve")
    return lib, pointer


@contextlib.contextmanager
def _pem_file(pem: str) -> Iterator[str]:
    """A path OpenSSL can read `pem` from, that exists only inside the block."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("tidegate-tls", os.MFD_CLOEXEC)
        try:
            with os.fdopen(os.dup(fd), "wb") as f:
                f.write(pem.encode())
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:  # created 0700: readable by us only
        path = os.path.join(folder, "chain.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(pem)
        yield path


def _load_chain(ctx: ssl.SSLContext, pair: KeyPair) -> None:
    with _pem_file(f"{pair.cert_pem.strip()}\n{pair.key_pem.strip()}\n") as path:
        try:
            ctx.load_cert_chain(path)
        except ssl.SSLError as exc:
            raise TLSContextError(f"OpenSSL refused the certificate or key: {exc}") from None


def _names(keys: tuple[KeyPair, ...], contexts: list[ssl.SSLContext]
           ) -> dict[str, ssl.SSLContext]:
    out: dict[str, ssl.SSLContext] = {}
    for pair, ctx in zip(keys, contexts, strict=True):
        for name in pair.names:
            out.setdefault(name, ctx)  # the first pair naming a host serves it
    return out


def _match(by_name: dict[str, ssl.SSLContext], name: str) -> ssl.SSLContext | None:
    name = name.lower().rstrip(".")
    found = by_name.get(name)
    if found is None and "." in name:
        found = by_name.get("*." + name.split(".", 1)[1])
    return found
