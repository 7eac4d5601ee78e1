"""``auth/signer``: the endpoint signs objects of its own response as JWTs (krakend-jose).

KrakenD's ``TokenSigner`` replaces the endpoint's handler: it builds the backend request as the
endpoint would, runs the endpoint's proxy under the endpoint timeout, turns every
``keys_to_sign`` entry whose value is an object into a token, and renders the data as JSON
with the response's status and the first value of each of its headers. No ``X-Krakend*`` or
``Cache-Control`` header: the lura handler that adds them is not involved. A proxy error, an
empty answer or a signing error is a ``400`` with an empty body.

The key is read once per generation, when the worker provisions it (KrakenD: when the handler
is built). If that fails, KrakenD answers ``401`` to every request until restarted; tidegate
answers 401 too, but tries again on a request at most once a second (one fetch at a time),
and a hot reload whose fetch fails keeps signing with the key the previous generation of the
same configuration had (the key box is `Build.state`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tidegate.bodies import BodyTooLarge
from tidegate.components.go_fields import (
    as_bool,
    as_str,
    as_str_list,
    as_uint,
    go_fields,
)
from tidegate.components.jose_sign import SIGNING_ALGS, JoseSigner, SigningKeyError, select_key
from tidegate.components.jwk_source import (
    GO_CIPHER_SUITES,
    JWKFetchError,
    JWKSource,
    decode_fingerprints,
)
from tidegate.components.seam import Build, Component, Level
from tidegate.errors import ConfigValueError
from tidegate.golang.json_wire import JSONError, dumps
from tidegate.messages import EndpointHandler, Proxy, ProxyRequest, Request, Response

__all__ = ["COMPONENT", "NAMESPACE", "SCHEMA", "KeyBox", "SignerConfig", "parse_signer",
           "signer_handler"]

NAMESPACE = "auth/signer"
log = logging.getLogger("tidegate.signer")

FIELDS = ("alg", "kid", "typ", "jwk_url", "full", "keys_to_sign", "cipher_suites",
          "disable_jwk_security", "jwk_fingerprints", "jwk_local_ca", "jwk_local_path",
          "secret_url", "cypher_key")
# The largest request body the signer holds (it always reads the body whole, as gin does).
HELD_BODY_LIMIT = 32 << 20
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
RETRY_EVERY = 1.0

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["alg", "kid", "keys_to_sign"],
    "properties": {
        "alg": {"type": "string", "enum": list(SIGNING_ALGS)},
        "kid": {"type": "string"},
        "typ": {"type": "string"},
        "keys_to_sign": {"type": "array", "items": {"type": "string"}},
        "jwk_url": {"type": "string"},
        "jwk_local_path": {"type": "string"},
        "full": {"type": "boolean"},
        "disable_jwk_security": {"type": "boolean"},
        "jwk_fingerprints": {"type": "array", "items": {"type": "string"}},
        "jwk_local_ca": {"type": "string"},
        "cipher_suites": {"type": "array", "items": {"type": "integer"}},
        "secret_url": {"type": "string"},
        "cypher_key": {"type": "string"},
    },
}


@dataclass(frozen=True)
class SignerConfig:
    """The section, typed. ``source`` says where the key set is read from."""

    alg: str
    kid: str
    typ: str
    keys_to_sign: tuple[str, ...]
    full: bool
    source: JWKSource

    def fingerprint(self) -> Any:
        """What the key box depends on (JSON-able)."""
        s = self.source
        return [self.alg, self.kid, s.url, s.local_path, s.insecure, s.local_ca,
                [f.hex() for f in s.fingerprints], list(s.cipher_suites)]


def parse_signer(raw: Any, path: tuple[str | int, ...]) -> SignerConfig:
    """The section as krakend-jose's ``SignerConfig``; what KrakenD would turn into a signer
    that answers 401 forever is refused here, at its key."""
    f = go_fields(raw, FIELDS, path, f"{NAMESPACE} section")
    alg = as_str(f["alg"]) if "alg" in f else ""
    if alg not in SIGNING_ALGS:
        raise ConfigValueError(f"alg {alg!r} cannot sign: use one of {', '.join(SIGNING_ALGS)}",
                               path=f["alg"][1] if "alg" in f else path)
    url = as_str(f["jwk_url"]) if "jwk_url" in f else ""
    local = as_str(f["jwk_local_path"]) if "jwk_local_path" in f else ""
    insecure = as_bool(f["disable_jwk_security"]) if "disable_jwk_security" in f else False
    if not local and not url:
        raise ConfigValueError("the signer needs its key: set jwk_url or jwk_local_path",
                               path=path)
    if not url.startswith("https://") and not insecure:
        where = f["jwk_url"][1] if "jwk_url" in f else path
        why = "jwk_url must be an https:// URL" if url else \
            "KrakenD reads jwk_local_path only with \"disable_jwk_security\": true"
        raise ConfigValueError(f"{why} unless disable_jwk_security is true (KrakenD would "
                               "answer 401 to every request)", path=where)
    for unsupported in ("secret_url", "cypher_key"):
        if unsupported in f and f[unsupported][0] not in ("", []):
            raise ConfigValueError(f"{unsupported} (a JWK file encrypted with a cloud KMS key) "
                                   "is not supported: store the JWK set unencrypted",
                                   path=f[unsupported][1])
    fingerprints: tuple[bytes, ...] = ()
    if "jwk_fingerprints" in f:
        try:
            fingerprints = decode_fingerprints(list(as_str_list(f["jwk_fingerprints"])))
        except ValueError as exc:
            raise ConfigValueError(str(exc), path=f["jwk_fingerprints"][1]) from None
    suites: tuple[int, ...] = ()
    if "cipher_suites" in f:
        value, where = f["cipher_suites"]
        if not isinstance(value, list):
            raise ConfigValueError("must be an array of cipher suite ids", path=where)
        suites = tuple(as_uint((v, (*where, i)), 16) for i, v in enumerate(value))
        for i, suite in enumerate(suites):
            if suite not in GO_CIPHER_SUITES:
                raise ConfigValueError(f"unknown or insecure cipher suite {suite}",
                                       path=(*where, i))
    source = JWKSource(
        url="" if local else url, local_path=local, insecure=insecure,
        local_ca=as_str(f["jwk_local_ca"]) if "jwk_local_ca" in f else "",
        fingerprints=fingerprints, cipher_suites=suites)
    return SignerConfig(
        alg=alg,
        kid=as_str(f["kid"]) if "kid" in f else "",
        typ=(as_str(f["typ"]) if "typ" in f else "") or "JWT",
        keys_to_sign=as_str_list(f["keys_to_sign"]) if "keys_to_sign" in f else (),
        full=as_bool(f["full"]) if "full" in f else False,
        source=source)


class KeyBox:
    """The signer of one configuration in one worker, carried over hot reloads.

    ``signer`` is None until a key was read (then the endpoint answers 401, as KrakenD).
    """

    def __init__(self) -> None:
        self.signer: JoseSigner | None = None
        self._next_try = 0.0
        self._loading: asyncio.Future[None] | None = None

    async def retry(self, cfg: SignerConfig, scope: str) -> JoseSigner | None:
        """No key yet: one fetch at a time, at most one a second."""
        if self._loading is None:
            loop = asyncio.get_running_loop()
            if loop.time() < self._next_try:
                return None
            self._next_try = loop.time() + RETRY_EVERY
            self._loading = loop.create_future()
            try:
                await self.load(cfg, scope)
            finally:
                self._loading.set_result(None)
                self._loading = None
        else:
            await asyncio.shield(self._loading)
        return self.signer

    async def load(self, cfg: SignerConfig, scope: str) -> None:
        """Read the key now; on failure keep the previous one, if this box had one."""
        try:
            key = select_key(await cfg.source.load(), cfg.kid, cfg.alg)
        except (JWKFetchError, SigningKeyError, TimeoutError) as exc:
            reason = str(exc) or "timed out"
            if self.signer is not None:
                log.warning("[ENDPOINT: %s][JWTSigner] Unable to read the key again, signing "
                            "with the one read before: %s", scope, reason)
            else:
                log.error("[ENDPOINT: %s][JWTSigner] Unable to create the signer: %s "
                          "(every request is answered 401)", scope, reason)
            return
        self.signer = JoseSigner(cfg.alg, cfg.kid, cfg.typ, key, cfg.full)


def signer_handler(cfg: SignerConfig, box: Callable[[], KeyBox], proxy: Proxy,
                   build_request: Callable[[Request, dict[str, str]], ProxyRequest],
                   timeout: float, scope: str) -> EndpointHandler:
    """krakend-jose's TokenSigner handler around the endpoint's own proxy.

    ``box`` returns the key box per request (a lease's value is only set at provision).
    """
    keys = cfg.keys_to_sign
    prefix = f"[ENDPOINT: {scope}][JWTSigner]"

    async def handle(req: Request, params: dict[str, str]) -> Response:
        keys_box = box()
        signer = keys_box.signer
        if signer is None:
            signer = await keys_box.retry(cfg, scope)
            if signer is None:
                return Response(401)
        if req.stream is not None:
            try:
                req.body = await req.stream.read_all(HELD_BODY_LIMIT)
            except BodyTooLarge:
                return Response(413)
            req.stream = None
        try:
            async with asyncio.timeout(timeout):
                resp, err = await proxy(build_request(req, params))
        except TimeoutError:
            resp, err = None, TimeoutError("context deadline exceeded")
        if err is not None:
            log.error("%s Proxy response: %s", prefix, err)
            return Response(400)
        if resp is None:
            log.error("%s Empty proxy response", prefix)
            return Response(400)
        data = resp.data
        try:
            if data is not None:
                for key in keys:
                    value = data.get(key)
                    if isinstance(value, dict):
                        data[key] = signer.sign(value)
            body = dumps(data)
        except (JSONError, ValueError) as exc:
            log.error("%s Signing fields: %s", prefix, exc)
            return Response(400)
        headers = [(k, vs[0]) for k, vs in resp.headers.items() if vs]
        if not any(k == "Content-Type" for k, _ in headers):
            headers.append(("Content-Type", JSON_CONTENT_TYPE))
        return Response(resp.status or 200, headers, body)

    return handle


def build_signer(b: Build[SignerConfig], next_handler: EndpointHandler) -> EndpointHandler:
    """The signer replaces the endpoint's handler (``next_handler`` is not called), around the
    endpoint's own proxy, as krakend-jose's TokenSigner wraps lura's handler factory."""
    if b.parts is None:
        raise b.error(f"{NAMESPACE} works at endpoint level only")
    cfg = b.config
    lease = b.state(cfg.fingerprint(), KeyBox)
    name = b.endpoint.endpoint if b.endpoint is not None else b.scope

    async def provision() -> None:
        await lease.value.load(cfg, name)

    b.on_provision(provision)
    return signer_handler(cfg, lambda: lease.value, b.parts.proxy, b.parts.build_request,
                          b.parts.timeout, name)


# Innermost of the router components (it replaces lura's handler): a validator, rate limit or
# bot detector on the same endpoint still runs before it.
COMPONENT: Component[SignerConfig] = Component(
    namespace=NAMESPACE, levels=frozenset({Level.ROUTER}), parse=parse_signer,
    build=build_signer, schema=SCHEMA, order=0)
