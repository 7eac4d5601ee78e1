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

from tidegate.golang.types import GoObject, from_bytes, go_bytes

from ..funcdef import INT, LIST, STRING, GoError, GoFunc, fn
from .crypto_keys import (
    FUNCS as KEY_FUNCS,
)
from .crypto_keys import (
    DSAKey,
    _rsa_key,
    parse_private_key_pem,
    pem_decode,
    pem_for_key,
)
from .encoding import go_b64decode

FUNCS: dict[str, GoFunc] = dict(KEY_FUNCS)

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


def _str_items(values: list[Any] | None, what: str) -> list[str]:
    from tidegate.golang.fmt import format_plain

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
        from tidegate.golang.fmt import sprintf

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
