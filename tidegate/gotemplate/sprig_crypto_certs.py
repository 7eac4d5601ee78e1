"""Sprig's key and certificate functions (genPrivateKey, genCA, genSignedCert...) and bcrypt.

Behaviour follows Sprig 3.2.3 on Go's crypto/x509: keys are PEM in the block types Sprig
writes ("RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", PKCS#8 "PRIVATE KEY" for
Ed25519), certificates carry the fields Go's ``x509.CreateCertificate`` puts in from Sprig's
template (random 128-bit serial, ``CN=<cn>`` subject, validity ``now .. now+days*24h``, key
usage, server+client auth, basic constraints, SKI for CAs, AKI when issued by another name,
SANs from the DNS then IP lists).

``cryptography`` and ``bcrypt`` are imported only when one of these functions runs, so
rendering templates that do not use them stays fast.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import warnings
from typing import Any

from .funcdef import INT, LIST, STRING, GoError, GoFunc, fn
from .gotypes import GoObject, from_bytes, go_bytes
from .sprig_encoding import go_b64decode

FUNCS: dict[str, GoFunc] = {}

CERT_TYPE = "sprig.certificate"


class Certificate(GoObject):
    """Sprig's ``certificate`` struct: PEM text of a certificate and of its private key."""

    go_type = CERT_TYPE
    go_kind = "struct"
    go_fields = ("Cert", "Key")

    __slots__ = ("f_Cert", "f_Key")

    def __init__(self, cert: str = "", key: str = "") -> None:
        self.f_Cert = cert
        self.f_Key = key

    def to_json_value(self) -> dict[str, str]:
        return {"Cert": self.f_Cert, "Key": self.f_Key}

    def go_equal(self, other: Any) -> bool:
        return (isinstance(other, Certificate) and self.f_Cert == other.f_Cert
                and self.f_Key == other.f_Key)

    def __repr__(self) -> str:
        return f"Certificate(Cert={self.f_Cert[:40]!r}..., Key=...)"


# ----------------------------------------------------------------------------- PEM / DER


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


def _str_items(values: list[Any] | None, what: str) -> list[str]:
    from .gofmt import format_plain

    out: list[str] = []
    for v in values or ():
        if type(v) is not str:
            if what == "ip":
                raise GoError(f"error parsing ip: {format_plain(v)} is not a string")
            raise GoError(f"error processing alternate dns name: {format_plain(v)} "
                          "is not a string")
        out.append(v)
    return out


def _parse_ip(s: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Go's net.ParseIP, then To4() as x509 does (IPv4-mapped addresses become IPv4)."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    try:
        if "%" in s or not s.isascii():
            raise ValueError(s)
        ip = ipaddress.ip_address(s)
    except ValueError:
        raise GoError(f"error parsing ip: {s}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")

_INT64 = 1 << 64


def _subject(cn: str) -> Any:
    """pkix.Name{CommonName: cn} as Go marshals it (PrintableString when it can)."""
    from cryptography import x509
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID

    if cn == "":
        return x509.Name([])
    try:
        go_bytes(cn).decode("utf-8")
    except UnicodeDecodeError:
        raise GoError("error creating certificate: asn1: string not valid UTF-8") from None
    typ = _ASN1Type.PrintableString if set(cn) <= _PRINTABLE else _ASN1Type.UTF8String
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Go has no length limit on CN
        try:
            attr = x509.NameAttribute(NameOID.COMMON_NAME, cn, typ, _validate=False)
        except TypeError:  # cryptography without the _validate switch
            attr = x509.NameAttribute(NameOID.COMMON_NAME, cn, typ)
    return x509.Name([attr])


class _Template:
    """The parts of Sprig's getBaseCertTemplate that vary."""

    def __init__(self, cn: str, ips: list[Any] | None, dns: list[Any] | None,
                 days: int) -> None:
        self.ips = [_parse_ip(s) for s in _str_items(ips, "ip")]
        self.dns = _str_items(dns, "dns")
        self.cn = cn
        self.serial = secrets.randbelow(1 << 128)
        now = datetime.datetime.now(datetime.UTC)
        # time.Hour * 24 * time.Duration(days): int64 nanoseconds, wrapping like Go
        ns = (days * 86_400_000_000_000) % _INT64
        if ns >= 1 << 63:
            ns -= _INT64
        self.not_before = now.replace(microsecond=0)
        after = now + datetime.timedelta(microseconds=ns // 1000)
        self.not_after = after.replace(microsecond=0)
        self.is_ca = False


def _spki(pub: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization as ser

    return pub.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


def _sign_hash(signer: Any) -> Any:
    """signingParamsForPublicKey: the digest Go signs with for this key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(signer, rsa.RSAPrivateKey):
        return hashes.SHA256()
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        name = signer.curve.name
        if name in ("secp224r1", "secp256r1"):
            return hashes.SHA256()
        if name == "secp384r1":
            return hashes.SHA384()
        return hashes.SHA512()
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return None
    raise GoError("error creating certificate: x509: only RSA, ECDSA and Ed25519 keys supported")


def _cert_and_key(tpl: _Template, signee: Any, parent: Any | None, signer: Any) -> Certificate:
    """Sprig's getCertAndKey: x509.CreateCertificate, then PEM of the cert and signee key.

    `parent` is None for a self-signed certificate (the template is its own parent).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser

    if isinstance(signer, DSAKey):
        raise GoError("error creating certificate: x509: certificate private key does not "
                      "implement crypto.Signer")
    digest = _sign_hash(signer)
    if isinstance(signee, DSAKey):
        raise GoError("error creating certificate: x509: unsupported public key type: "
                      "*dsa.PublicKey")
    pub = signee.public_key()
    subject = _subject(tpl.cn)
    issuer = subject if parent is None else parent.subject
    subject_der = subject.public_bytes()

    aki: bytes | None = None
    if parent is not None and issuer.public_bytes() != subject_der:
        try:
            aki = parent.extensions.get_extension_for_class(x509.SubjectKeyIdentifier) \
                .value.digest
        except x509.ExtensionNotFound:
            aki = None
    if parent is not None:
        try:
            parent_pub = _spki(parent.public_key())
        except (ValueError, TypeError, NotImplementedError):
            parent_pub = b""
        if parent_pub != _spki(signer.public_key()):
            raise GoError("error creating certificate: x509: provided PrivateKey doesn't "
                          "match parent's PublicKey")

    exts: list[tuple[Any, bool]] = [
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                       data_encipherment=False, key_agreement=False, key_cert_sign=tpl.is_ca,
                       crl_sign=False, encipher_only=False, decipher_only=False), True),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.BasicConstraints(ca=tpl.is_ca, path_length=None), True),
    ]
    if tpl.is_ca:
        exts.append((x509.SubjectKeyIdentifier.from_public_key(pub), False))
    if aki:
        exts.append((x509.AuthorityKeyIdentifier(aki, None, None), False))
    if tpl.dns or tpl.ips:
        from .gofmt import sprintf

        names: list[Any] = []
        for d in tpl.dns:
            if not d.isascii():
                raise GoError("error creating certificate: x509: "
                              f"{sprintf('%q', [d])} cannot be encoded as an IA5String")
            names.append(x509.DNSName(d))
        names.extend(x509.IPAddress(ip) for ip in tpl.ips)
        exts.append((x509.SubjectAlternativeName(names), subject_der == b"\x30\x00"))

    for t in (tpl.not_before, tpl.not_after):
        if t.year < 1950:
            raise GoError("error creating certificate: validity dates before 1950 are not "
                          "supported by tidegate")
    # The constructor is used directly: Go accepts a NotAfter before NotBefore (negative days)
    # and a zero serial, which the builder's setters would reject.
    builder = x509.CertificateBuilder(issuer, subject, pub, tpl.serial, tpl.not_before,
                                      tpl.not_after, [])
    for ext, critical in exts:
        builder = builder.add_extension(ext, critical=critical)
    cert = builder.sign(signer, digest)
    cert_pem = cert.public_bytes(ser.Encoding.PEM).decode("ascii")
    return Certificate(cert_pem, pem_for_key(signee))


def _parse_cert_pem(text: str, what: str) -> Any:
    from cryptography import x509

    block = pem_decode(go_bytes(text))
    if block is None:
        raise GoError("unable to decode certificate")
    try:
        cert = x509.load_der_x509_certificate(block[1])
        _ = cert.extensions  # Go parses every extension up front
    except ValueError:
        raise GoError(f"error parsing certificate: {what}: x509: malformed certificate") from None
    return cert


def _with_key(priv_pem: str) -> Any:
    try:
        return parse_private_key_pem(priv_pem)
    except GoError as e:
        raise GoError(f"parsing private key: {e}") from None


def _ca(cn: str, days: int, key: Any) -> Certificate:
    tpl = _Template(cn, None, None, days)
    tpl.is_ca = True
    return _cert_and_key(tpl, key, None, key)


def _self_signed(cn: str, ips: list[Any], dns: list[Any], days: int, key: Any) -> Certificate:
    return _cert_and_key(_Template(cn, ips, dns, days), key, None, key)


def _signed(cn: str, ips: list[Any], dns: list[Any], days: int, ca: Certificate,
            key: Any) -> Certificate:
    parent = _parse_cert_pem(ca.f_Cert, "decodedSignerCert.Bytes")
    try:
        signer = parse_private_key_pem(ca.f_Key)
    except GoError as e:
        raise GoError(f"error parsing private key: {e}") from None
    return _cert_and_key(_Template(cn, ips, dns, days), key, parent, signer)


@fn(FUNCS, "buildCustomCert", (STRING, STRING), returns=CERT_TYPE)
def build_custom_cert(b64cert: str, b64key: str) -> Certificate:
    try:
        cert = go_b64decode(b64cert)
    except GoError:
        raise GoError("unable to decode base64 certificate") from None
    try:
        key = go_b64decode(b64key)
    except GoError:
        raise GoError("unable to decode base64 private key") from None
    _parse_cert_pem(from_bytes(cert), "decodedCert.Bytes")
    try:
        parse_private_key_pem(from_bytes(key))
    except GoError as e:
        raise GoError(f"error parsing private key: {e}") from None
    return Certificate(from_bytes(cert), from_bytes(key))


@fn(FUNCS, "genCA", (STRING, INT), returns=CERT_TYPE)
def gen_ca(cn: str, days: int) -> Certificate:
    return _ca(cn, days, _rsa_key(2048))


@fn(FUNCS, "genCAWithKey", (STRING, INT, STRING), returns=CERT_TYPE)
def gen_ca_with_key(cn: str, days: int, priv_pem: str) -> Certificate:
    return _ca(cn, days, _with_key(priv_pem))


@fn(FUNCS, "genSelfSignedCert", (STRING, LIST, LIST, INT), returns=CERT_TYPE)
def gen_self_signed_cert(cn: str, ips: list[Any], dns: list[Any], days: int) -> Certificate:
    return _self_signed(cn, ips, dns, days, _rsa_key(2048))


@fn(FUNCS, "genSelfSignedCertWithKey", (STRING, LIST, LIST, INT, STRING), returns=CERT_TYPE)
def gen_self_signed_cert_with_key(cn: str, ips: list[Any], dns: list[Any], days: int,
                                  priv_pem: str) -> Certificate:
    return _self_signed(cn, ips, dns, days, _with_key(priv_pem))


@fn(FUNCS, "genSignedCert", (STRING, LIST, LIST, INT, CERT_TYPE), returns=CERT_TYPE)
def gen_signed_cert(cn: str, ips: list[Any], dns: list[Any], days: int,
                    ca: Certificate) -> Certificate:
    return _signed(cn, ips, dns, days, ca, _rsa_key(2048))


@fn(FUNCS, "genSignedCertWithKey", (STRING, LIST, LIST, INT, CERT_TYPE, STRING),
    returns=CERT_TYPE)
def gen_signed_cert_with_key(cn: str, ips: list[Any], dns: list[Any], days: int,
                             ca: Certificate, priv_pem: str) -> Certificate:
    return _signed(cn, ips, dns, days, ca, _with_key(priv_pem))


# ----------------------------------------------------------------------------- bcrypt


@fn(FUNCS, "bcrypt", (STRING,), returns=STRING)
def bcrypt_hash(s: str) -> str:
    """golang.org/x/crypto/bcrypt.GenerateFromPassword(s, DefaultCost): ``$2a$10$...``."""
    import bcrypt

    # Go's Blowfish key schedule reads at most 72 bytes of the key; bcrypt>=5 rejects more.
    password = go_bytes(s)[:72]
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=10, prefix=b"2a")).decode("ascii")


@fn(FUNCS, "htpasswd", (STRING, STRING), returns=STRING)
def htpasswd(username: str, password: str) -> str:
    if ":" in username:
        return f"invalid username: {username}"
    return f"{username}:{bcrypt_hash(password)}"
