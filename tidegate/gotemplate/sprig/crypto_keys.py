"""Sprig's private-key functions (genPrivateKey) and the PEM/DER reading the certificate
functions share, following Go's crypto/x509 and encoding/pem.

``cryptography`` is imported only when one of these functions runs.
"""

from __future__ import annotations

from typing import Any

from tidegate.golang.types import from_bytes, go_bytes

from ..funcdef import STRING, GoError, GoFunc, fn
from .encoding import go_b64decode

FUNCS: dict[str, GoFunc] = {}


def pem_decode(data: bytes) -> tuple[str, bytes] | None:
    """Go's ``pem.Decode``: the first well-formed block as (type, bytes), else None."""
    rest = data
    while True:
        if rest.startswith(b"-----BEGIN "):
            rest = rest[len(b"-----BEGIN "):]
        else:
            i = rest.find(b"\n-----BEGIN ")
            if i < 0:
                return None
            rest = rest[i + len(b"\n-----BEGIN "):]
        type_line, rest = _get_line(rest)
        if not type_line.endswith(b"-----"):
            continue
        type_line = type_line[:-5]
        headers = False
        eof = False
        while True:
            if not rest:
                eof = True
                break
            line, nxt = _get_line(rest)
            if b":" not in line:
                break
            headers = True
            rest = nxt
        if eof:
            return None
        if not headers and rest.startswith(b"-----END "):
            end_index, trailer_index = 0, len(b"-----END ")
        else:
            end_index = rest.find(b"\n-----END ")
            trailer_index = end_index + len(b"\n-----END ")
        if end_index < 0:
            continue
        trailer = rest[trailer_index:]
        trailer_len = len(type_line) + 5
        if len(trailer) < trailer_len:
            continue
        rest_of_end_line, trailer = trailer[trailer_len:], trailer[:trailer_len]
        if not trailer.startswith(type_line) or not trailer.endswith(b"-----"):
            continue
        if _get_line(rest_of_end_line)[0]:
            continue
        body = rest[:end_index].replace(b" ", b"").replace(b"\t", b"")
        try:
            raw = go_b64decode(from_bytes(body))
        except GoError:
            continue
        return from_bytes(type_line), raw


def _get_line(data: bytes) -> tuple[bytes, bytes]:
    i = data.find(b"\n")
    if i < 0:
        line, rest = data, b""
    else:
        line, rest = data[:i], data[i + 1:]
    return line.rstrip(b" \t\r"), rest


def _der_items(der: bytes) -> list[tuple[int, bytes]] | None:
    """The (tag, content) children of a DER SEQUENCE, or None if it is not one."""
    top = _der_read(der, 0)
    if top is None or top[0] != 0x30:
        return None
    body = top[1]
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        item = _der_read(body, pos)
        if item is None:
            return None
        out.append((item[0], item[1]))
        pos = item[2]
    return out


def _der_read(buf: bytes, pos: int) -> tuple[int, bytes, int] | None:
    if pos + 2 > len(buf):
        return None
    tag, n = buf[pos], buf[pos + 1]
    pos += 2
    if n & 0x80:
        width = n & 0x7F
        if width == 0 or width > 4 or pos + width > len(buf):
            return None
        n = int.from_bytes(buf[pos:pos + width], "big")
        pos += width
    if pos + n > len(buf):
        return None
    return tag, buf[pos:pos + n], pos + n


def _oid_text(content: bytes) -> str:
    if not content:
        return ""
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    acc = 0
    for b in content[1:]:
        acc = (acc << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(acc)
            acc = 0
    return ".".join(str(p) for p in parts)


# ----------------------------------------------------------------------------- keys

_GO_CURVES = {"secp224r1", "secp256r1", "secp384r1", "secp521r1"}


class DSAKey:
    """A DSA private key as Sprig reads it (Go can neither sign with it nor certify it)."""

    def __init__(self, p: int, q: int, g: int, y: int, x: int) -> None:
        self.p, self.q, self.g, self.y, self.x = p, q, g, y, x


def _load_der(der: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, password=None)


def _is_pkcs8(items: list[tuple[int, bytes]] | None) -> bool:
    return bool(items) and len(items) >= 3 and items[0][0] == 0x02 and items[1][0] == 0x30 \
        and items[2][0] == 0x04


def _is_sec1(items: list[tuple[int, bytes]] | None) -> bool:
    return bool(items) and len(items) >= 2 and items[0] == (0x02, b"\x01") \
        and items[1][0] == 0x04


def _parse_pkcs8(der: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    items = _der_items(der)
    if not _is_pkcs8(items):
        if _is_sec1(items):
            raise GoError("x509: failed to parse private key (use ParseECPrivateKey instead "
                          "for this key format)")
        if items and len(items) >= 9 and all(t == 0x02 for t, _ in items):
            raise GoError("x509: failed to parse private key (use ParsePKCS1PrivateKey instead "
                          "for this key format)")
        raise GoError("asn1: structure error: malformed PKCS#8 private key")
    assert items is not None
    try:
        key = _load_der(der)
    except (ValueError, TypeError) as e:
        key = e
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _GO_CURVES:
            raise GoError("x509: failed to parse EC private key embedded in PKCS#8: "
                          "x509: unknown elliptic curve")
        return key
    alg = _der_items(b"\x30" + _der_len(items[1][1]) + items[1][1])
    oid = _oid_text(alg[0][1]) if alg and alg[0][0] == 0x06 else ""
    if oid in ("1.2.840.113549.1.1.1", "1.2.840.10045.2.1", "1.3.101.112"):
        kind = {"1.2.840.113549.1.1.1": "RSA", "1.2.840.10045.2.1": "EC"}.get(oid)
        if kind is None:
            raise GoError("x509: invalid Ed25519 private key")
        raise GoError(f"x509: failed to parse {kind} private key embedded in PKCS#8: "
                      "invalid key data")
    raise GoError(f"x509: PKCS#8 wrapping contained private key with unknown algorithm: {oid}")


def _der_len(body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _parse_pkcs1(der: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    items = _der_items(der)
    if _is_pkcs8(items):
        raise GoError("x509: failed to parse private key (use ParsePKCS8PrivateKey instead "
                      "for this key format)")
    if _is_sec1(items):
        raise GoError("x509: failed to parse private key (use ParseECPrivateKey instead "
                      "for this key format)")
    if not items or len(items) < 9 or any(t != 0x02 for t, _ in items[:9]):
        raise GoError("asn1: structure error: malformed PKCS#1 private key")
    if items[0][1] not in (b"\x00", b"\x01"):
        raise GoError("x509: unsupported private key version")
    try:
        key = _load_der(der)
    except (ValueError, TypeError):
        raise GoError("x509: private key contains zero or negative value") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise GoError("asn1: structure error: malformed PKCS#1 private key")
    return key


def _parse_sec1(der: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    items = _der_items(der)
    if _is_pkcs8(items):
        raise GoError("x509: failed to parse private key (use ParsePKCS8PrivateKey instead "
                      "for this key format)")
    if items and len(items) >= 9 and all(t == 0x02 for t, _ in items):
        raise GoError("x509: failed to parse private key (use ParsePKCS1PrivateKey instead "
                      "for this key format)")
    if not items or len(items) < 2 or items[0][0] != 0x02 or items[1][0] != 0x04:
        raise GoError("x509: failed to parse EC private key: asn1: structure error: "
                      "malformed EC private key")
    if items[0][1] != b"\x01":
        raise GoError(f"x509: unknown EC private key version {int.from_bytes(items[0][1], 'big')}")
    try:
        key = _load_der(der)
    except (ValueError, TypeError, NotImplementedError):
        raise GoError("x509: unknown elliptic curve") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _GO_CURVES:
        raise GoError("x509: unknown elliptic curve")
    return key


def _parse_dsa(der: bytes) -> DSAKey:
    items = _der_items(der)
    if not items or len(items) < 6 or any(t != 0x02 for t, _ in items[:6]):
        raise GoError("asn1: structure error: malformed DSA private key")
    p, q, g, y, x = (int.from_bytes(v, "big", signed=True) for _, v in items[1:6])
    return DSAKey(p, q, g, y, x)


def parse_private_key_pem(text: str) -> Any:
    """Sprig's parsePrivateKeyPEM; errors carry its messages."""
    block = pem_decode(go_bytes(text))
    if block is None:
        raise GoError("no PEM data in input")
    typ, der = block
    if typ == "PRIVATE KEY":
        try:
            return _parse_pkcs8(der)
        except GoError as e:
            raise GoError(f"decoding PEM as PKCS#8: {e}") from None
    if not typ.endswith(" PRIVATE KEY"):
        raise GoError(f"no private key data in PEM block of type {typ}")
    kind = typ[:-12]
    if kind == "RSA":
        try:
            return _parse_pkcs1(der)
        except GoError as e:
            raise GoError(f"parsing RSA private key from PEM: {e}") from None
    if kind == "EC":
        try:
            return _parse_sec1(der)
        except GoError as e:
            raise GoError(f"parsing EC private key from PEM: {e}") from None
    if kind == "DSA":
        try:
            return _parse_dsa(der)
        except GoError as e:
            raise GoError(f"parsing DSA private key from PEM: {e}") from None
    raise GoError(f"invalid private key type {typ}")


def pem_for_key(key: Any) -> str:
    """Sprig's pemBlockForKey, PEM-encoded."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) or _is_dsa(key):
        fmt = ser.PrivateFormat.TraditionalOpenSSL
    else:
        fmt = ser.PrivateFormat.PKCS8
    return key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption()).decode("ascii")


def _is_dsa(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import dsa

    return isinstance(key, dsa.DSAPrivateKey)


def _rsa_key(bits: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@fn(FUNCS, "genPrivateKey", (STRING,), returns=STRING)
def gen_private_key(typ: str) -> str:
    if typ in ("", "rsa"):
        key = _rsa_key(4096)
    elif typ == "dsa":
        from cryptography.hazmat.primitives.asymmetric import dsa

        key = dsa.generate_private_key(key_size=2048)  # L2048 N256, as Go's dsa.L2048N256
    elif typ == "ecdsa":
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
    elif typ == "ed25519":
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
    else:
        return "Unknown type " + typ
    return pem_for_key(key)


# ----------------------------------------------------------------------------- certificates
