"""``auth/revoker``: tokens revoked by claim value, in KrakenD CE's rotating bloom filter.

The section (root ``extra_config``; KrakenD's ``github_com/devopsfaith/bloomfilter``) sizes the
filter (``N`` entries at false-positive rate ``P``, ``hash_name`` ``default`` or ``optimal``),
sets its rotation ``TTL`` (seconds), the ``token_keys`` whose claim values are looked up, and
the ``port`` of the admin endpoint (`admin`). A token whose claim ``k`` is the string ``v``
with ``"k-v"`` in the filter is rejected by ``auth/validator`` with 401 (`revocation_check`).

The filter is `Build.state` keyed by its settings, in memory shared by the node's workers
(`shared`): a reload with the same settings keeps every revoked entry, whatever else changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from tidegate.components.go_fields import as_number, as_str, as_str_list, as_uint, go_fields
from tidegate.components.revoker.admin import AdminServer
from tidegate.components.revoker.bloom import HASHERS, BloomConfig
from tidegate.components.revoker.shared import SharedFilter
from tidegate.components.seam import Build, Component, Level
from tidegate.errors import ConfigValueError
from tidegate.state import fingerprint

__all__ = ["COMPONENT", "NAMESPACE", "RevokerConfig", "parse_revoker", "revocation_check"]

NAMESPACE = "auth/revoker"
log = logging.getLogger("tidegate.revoker")
FIELDS = ("n", "p", "hash_name", "ttl", "port", "token_keys", "headers")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["N", "P", "hash_name", "TTL", "port", "token_keys"],
    "properties": {
        "N": {"type": "integer", "minimum": 1},
        "P": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "hash_name": {"type": "string", "enum": sorted(HASHERS)},
        "TTL": {"type": "integer", "minimum": 1},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "token_keys": {"type": "array", "items": {"type": "string"}},
        "headers": {"type": "array", "items": {"type": "string"}},
    },
}


class RevokerConfig:
    """The section, typed (frozen by convention: built once by `parse_revoker`)."""

    __slots__ = ("bloom", "port", "token_keys")

    def __init__(self, bloom: BloomConfig, port: int, token_keys: tuple[str, ...]) -> None:
        self.bloom, self.port, self.token_keys = bloom, port, token_keys

    def filter_name(self) -> str:
        """The shared file of this filter for this gateway (its supervisor is the parent)."""
        b = self.bloom
        return SharedFilter.name_for(os.getppid(), fingerprint([b.n, b.p, b.hash_name, b.ttl]))


def parse_revoker(raw: Any, path: tuple[str | int, ...]) -> RevokerConfig:
    """The section as krakend/bloomfilter reads it (Go field names match case-insensitively);
    values with which KrakenD panics (N or TTL 0, no hash_name, P outside (0, 1)) are refused."""
    f = go_fields(raw, FIELDS, path, f"{NAMESPACE} section")
    for name in ("n", "p", "hash_name", "ttl"):
        if name not in f:
            raise ConfigValueError(f"{name.upper() if len(name) < 4 else name} is required "
                                   "(KrakenD stops with a panic without it)", path=path)
    n = as_uint(f["n"])
    p = as_number(f["p"])
    ttl = as_uint(f["ttl"])
    hash_name = as_str(f["hash_name"])
    if n == 0:
        raise ConfigValueError("N must be at least 1", path=f["n"][1])
    if not 0 < p < 1:
        raise ConfigValueError("P must be between 0 and 1 (a false-positive rate)",
                               path=f["p"][1])
    if ttl == 0:
        raise ConfigValueError("TTL must be at least 1 (seconds)", path=f["ttl"][1])
    if hash_name not in HASHERS:
        raise ConfigValueError(f"hash_name must be one of {', '.join(sorted(HASHERS))}",
                               path=f["hash_name"][1])
    port = as_uint(f["port"], 16) if "port" in f else 0
    keys = as_str_list(f["token_keys"]) if "token_keys" in f else ()
    if "headers" in f:
        as_str_list(f["headers"])  # read by KrakenD's package, used by no CE component
    return RevokerConfig(BloomConfig(n, p, hash_name, ttl), port, keys)


class RevokerState:
    """One worker's filter and admin listener, carried over reloads."""

    def __init__(self, cfg: RevokerConfig) -> None:
        self.filter = SharedFilter(cfg.bloom, cfg.filter_name())
        self.admin = AdminServer(cfg.port, self.filter.add, self.filter.check) \
            if cfg.port else None

    async def start(self) -> None:
        self.filter.open()
        if self.admin is not None:
            await self.admin.start()

    async def close(self) -> None:
        if self.admin is not None:
            await self.admin.close()
        self.filter.close()


def build_revoker(b: Build[RevokerConfig], next_stage: Any) -> Any:
    """Lease the filter and its admin endpoint; the pipeline itself is not wrapped (the
    validator asks `revocation_check`)."""
    cfg = b.config
    lease = b.state([cfg.port, cfg.filter_name()], lambda: RevokerState(cfg), scope="service")

    async def provision() -> None:
        if cfg.port == 0:
            log.warning("[SERVICE: Bloomfilter] no port: tokens cannot be revoked at run time")
        await lease.value.start()

    b.on_provision(provision)
    return next_stage


def revocation_check(b: Build[Any]) -> Callable[[Mapping[str, Any]], bool] | None:
    """For ``auth/validator``: None without a revoker, else ``is_revoked(claims)``.

    Call it from the validator's ``build``; it leases a view of the same shared filter (under
    the caller's namespace), opened at provision. krakend/bloomfilter's ``RejectToken``: a claim
    of ``token_keys`` whose value is a string ``v`` is revoked when ``"<key>-<v>"`` is found.
    """
    # A stage compiled alone (unit tests) may have no service.
    raw = (getattr(b.service, "extra_config", None) or {}).get(NAMESPACE)
    if raw is None:
        return None
    cfg = parse_revoker(raw, ("extra_config", NAMESPACE))
    keys = cfg.token_keys
    name = cfg.filter_name()
    lease = b.state(["revoker", name], lambda: SharedFilter(cfg.bloom, name), scope="service")
    b.on_provision(lambda: lease.value.open())

    def is_revoked(claims: Mapping[str, Any]) -> bool:
        check = lease.value.check
        for key in keys:
            value = claims.get(key)
            if isinstance(value, str) and check(f"{key}-{value}".encode()):
                return True
        return False

    return is_revoked


COMPONENT: Component[RevokerConfig] = Component(
    namespace=NAMESPACE, levels=frozenset({Level.SERVICE}), parse=parse_revoker,
    build=build_revoker, schema=SCHEMA)
