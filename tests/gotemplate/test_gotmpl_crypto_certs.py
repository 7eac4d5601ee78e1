"""Sprig's key/certificate generation and bcrypt: PEMs parsed back with `cryptography`."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import subprocess
import sys
from pathlib import Path

import pytest

bcrypt = pytest.importorskip("bcrypt")
x509 = pytest.importorskip("cryptography.x509")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from tidegate.gotemplate.funcs import krakend_funcs  # noqa: E402
from tidegate.gotemplate.template import ExecError, TemplateSet  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def render(text: str, data: object = None) -> str:
    ts = TemplateSet(krakend_funcs(""))
    ts.parse("krakend.tmpl", text)
    return ts.execute("krakend.tmpl", {} if data is None else data)


def cert_and_key(expr: str, data: object = None) -> tuple[x509.Certificate, object, str]:
    """Render `expr` (a certificate) and return the parsed cert, parsed key and key PEM."""
    sep = "\x1e"
    out = render("{{ $c := " + expr + " }}{{ $c.Cert }}" + sep + "{{ $c.Key }}", data)
    cert_pem, key_pem = out.split(sep)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return cert, key, key_pem


def pem_header(pem: str) -> str:
    return pem.splitlines()[0]


def spki(key: object) -> bytes:
    if hasattr(key, "public_key"):  # a private key
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def ext(cert: x509.Certificate, cls: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(cls)


def assert_leaf_or_ca_fields(cert: x509.Certificate, cn: str, days: int, is_ca: bool) -> None:
    assert cert.version is x509.Version.v3
    assert 0 <= cert.serial_number < 1 << 128
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == cn
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=days)
    now = datetime.datetime.now(datetime.UTC)
    assert abs((cert.not_valid_before_utc - now).total_seconds()) < 120
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature and ku.value.key_encipherment
    assert ku.value.key_cert_sign is is_ca
    assert not (ku.value.crl_sign or ku.value.content_commitment or ku.value.data_encipherment)
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca is is_ca and bc.value.path_length is None


# ----------------------------------------------------------------------------- genPrivateKey


@pytest.mark.parametrize(("typ", "header", "cls"), [
    ("rsa", "-----BEGIN RSA PRIVATE KEY-----", rsa.RSAPrivateKey),
    ("", "-----BEGIN RSA PRIVATE KEY-----", rsa.RSAPrivateKey),
    ("ecdsa", "-----BEGIN EC PRIVATE KEY-----", ec.EllipticCurvePrivateKey),
    ("dsa", "-----BEGIN DSA PRIVATE KEY-----", dsa.DSAPrivateKey),
    ("ed25519", "-----BEGIN PRIVATE KEY-----", ed25519.Ed25519PrivateKey),
])
def test_gen_private_key_pem_types(typ: str, header: str, cls: type) -> None:
    pem = render('{{ genPrivateKey "' + typ + '" }}')
    assert pem_header(pem) == header
    assert pem.endswith("-----\n")
    assert all(len(line) <= 64 for line in pem.splitlines())
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, cls)
    if isinstance(key, rsa.RSAPrivateKey):
        assert key.key_size == 4096
        assert key.private_numbers().public_numbers.e == 65537
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        assert key.curve.name == "secp256r1"
    elif isinstance(key, dsa.DSAPrivateKey):
        params = key.parameters().parameter_numbers()
        assert (params.p.bit_length(), params.q.bit_length()) == (2048, 256)


def test_gen_private_key_unknown_type_is_a_string() -> None:
    assert render('{{ genPrivateKey "foo" }}') == "Unknown type foo"


# ----------------------------------------------------------------------------- genCA


def test_gen_ca_fields() -> None:
    cert, key, key_pem = cert_and_key('genCA "foo" 365')
    assert pem_header(key_pem) == "-----BEGIN RSA PRIVATE KEY-----"
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert spki(key) == spki(cert.public_key())
    assert_leaf_or_ca_fields(cert, "foo", 365, is_ca=True)
    assert cert.issuer == cert.subject
    ski = ext(cert, x509.SubjectKeyIdentifier)
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.AuthorityKeyIdentifier)
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    cert.verify_directly_issued_by(cert)
    # Go marshals a printable CN as PrintableString
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0]._type.name == \
        "PrintableString"


@pytest.mark.parametrize(("typ", "sig_oid", "header"), [
    ("ecdsa", x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256, "-----BEGIN EC PRIVATE KEY-----"),
    ("ed25519", x509.SignatureAlgorithmOID.ED25519, "-----BEGIN PRIVATE KEY-----"),
])
def test_gen_ca_with_key(typ: str, sig_oid: x509.ObjectIdentifier, header: str) -> None:
    key_pem_in = render('{{ genPrivateKey "' + typ + '" }}')
    cert, key, key_pem = cert_and_key('genCAWithKey "my ca" 30 .k', {"k": key_pem_in})
    assert key_pem == key_pem_in
    assert pem_header(key_pem) == header
    assert spki(key) == spki(cert.public_key())
    assert_leaf_or_ca_fields(cert, "my ca", 30, is_ca=True)
    assert cert.signature_algorithm_oid == sig_oid
    cert.verify_directly_issued_by(cert)


def test_pkcs8_rsa_key_comes_back_as_pkcs1() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    _, _, key_pem = cert_and_key('genCAWithKey "x" 1 .k', {"k": pkcs8})
    assert pem_header(key_pem) == "-----BEGIN RSA PRIVATE KEY-----"


def test_dsa_key_cannot_sign() -> None:
    key = dsa.generate_private_key(key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    with pytest.raises(ExecError, match=re.escape(
            "error calling genCAWithKey: error creating certificate: "
            "x509: certificate private key does not implement crypto.Signer")):
        render('{{ genCAWithKey "x" 1 .k }}', {"k": pem})


@pytest.mark.parametrize(("key", "msg"), [
    ("junk", "parsing private key: no PEM data in input"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
     "parsing private key: no private key data in PEM block of type CERTIFICATE"),
    ("-----BEGIN FOO PRIVATE KEY-----\nAAAA\n-----END FOO PRIVATE KEY-----\n",
     "parsing private key: invalid private key type FOO PRIVATE KEY"),
])
def test_gen_ca_with_bad_key(key: str, msg: str) -> None:
    with pytest.raises(ExecError, match=re.escape("error calling genCAWithKey: " + msg)):
        render('{{ genCAWithKey "x" 1 .k }}', {"k": key})


# ----------------------------------------------------------------------------- self-signed


def test_gen_self_signed_cert_sans() -> None:
    cert, key, key_pem = cert_and_key(
        'genSelfSignedCert "foo.com" (list "10.0.0.1" "::1" "::ffff:1.2.3.4") '
        '(list "foo.com" "*.foo.com") 365')
    assert pem_header(key_pem) == "-----BEGIN RSA PRIVATE KEY-----"
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert_leaf_or_ca_fields(cert, "foo.com", 365, is_ca=False)
    assert cert.issuer == cert.subject
    san = ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    # DNS names first, then IPs; IPv4-mapped addresses are written as IPv4 (4 bytes)
    assert list(san.value) == [
        x509.DNSName("foo.com"), x509.DNSName("*.foo.com"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.IPAddress(ipaddress.ip_address("1.2.3.4")),
    ]
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectKeyIdentifier)
    cert.verify_directly_issued_by(cert)


def test_self_signed_with_key_empty_cn_and_negative_days() -> None:
    key_pem_in = render('{{ genPrivateKey "ecdsa" }}')
    cert, _, _ = cert_and_key('genSelfSignedCertWithKey "" nil (list "a") -2 .k',
                              {"k": key_pem_in})
    assert len(cert.subject) == 0
    assert ext(cert, x509.SubjectAlternativeName).critical  # Go: critical when no subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=-2)


@pytest.mark.parametrize(("ips", "dns", "msg"), [
    ('(list "10.0.0.300")', "nil", "error parsing ip: 10.0.0.300"),
    ("(list 1)", "nil", "error parsing ip: 1 is not a string"),
    ("nil", "(list 1.5)", "error processing alternate dns name: 1.5 is not a string"),
    ("nil", '(list "bücher.de")',
     'error creating certificate: x509: "bücher.de" cannot be encoded as an IA5String'),
])
def test_self_signed_errors(ips: str, dns: str, msg: str) -> None:
    with pytest.raises(ExecError, match=re.escape("error calling genSelfSignedCert: " + msg)):
        render(f'{{{{ genSelfSignedCert "x" {ips} {dns} 1 }}}}')


# ----------------------------------------------------------------------------- signed


def test_gen_signed_cert_fields() -> None:
    tmpl = ('{{ $ca := genCAWithKey "ca" 30 (genPrivateKey "ecdsa") }}'
            '{{ $c := genSignedCert "svc" (list "127.0.0.1") (list "svc.local") 10 $ca }}'
            '{{ $ca.Cert }}\x1e{{ $c.Cert }}\x1e{{ $c.Key }}')
    ca_pem, cert_pem, key_pem = render(tmpl).split("\x1e")
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert spki(key) == spki(cert.public_key())
    assert_leaf_or_ca_fields(cert, "svc", 10, is_ca=False)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert list(ext(cert, x509.SubjectAlternativeName).value) == [
        x509.DNSName("svc.local"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


def test_gen_signed_cert_with_key_ed25519() -> None:
    tmpl = ('{{ $ca := genCA "ca" 30 }}'
            '{{ $c := genSignedCertWithKey "svc" nil nil 5 $ca (genPrivateKey "ed25519") }}'
            '{{ $ca.Cert }}\x1e{{ $c.Cert }}\x1e{{ $c.Key }}')
    ca_pem, cert_pem, key_pem = render(tmpl).split("\x1e")
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert pem_header(key_pem) == "-----BEGIN PRIVATE KEY-----"
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert spki(key) == spki(cert.public_key())
    cert.verify_directly_issued_by(ca)
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)


def test_signed_by_ca_whose_key_does_not_match() -> None:
    tmpl = ('{{ $a := genCAWithKey "a" 1 (genPrivateKey "ecdsa") }}'
            '{{ $b := genCAWithKey "b" 1 (genPrivateKey "ecdsa") }}'
            '{{ $ca := buildCustomCert (b64enc $a.Cert) (b64enc $b.Key) }}'
            '{{ genSignedCert "x" nil nil 1 $ca }}')
    with pytest.raises(ExecError, match=re.escape(
            "error creating certificate: x509: provided PrivateKey "
            "doesn't match parent's PublicKey")):
        render(tmpl)


# ----------------------------------------------------------------------------- the struct


def test_build_custom_cert_and_certificate_struct() -> None:
    tmpl = ('{{ $a := genCAWithKey "a" 1 (genPrivateKey "ecdsa") }}'
            '{{ $c := buildCustomCert (b64enc $a.Cert) (b64enc $a.Key) }}'
            '{{ typeOf $c }} {{ kindOf $c }} {{ eq $c $a }} {{ eq $c.Key $a.Key }} '
            '{{ keys (fromJson (toJson $c)) | sortAlpha }}')
    assert render(tmpl) == "sprig.certificate struct true true [Cert Key]"


@pytest.mark.parametrize(("cert", "key", "msg"), [
    ("!!", "", "unable to decode base64 certificate"),
    (base64.b64encode(b"x").decode(), "!!", "unable to decode base64 private key"),
    (base64.b64encode(b"x").decode(), "", "unable to decode certificate"),
])
def test_build_custom_cert_errors(cert: str, key: str, msg: str) -> None:
    with pytest.raises(ExecError, match=re.escape("error calling buildCustomCert: " + msg)):
        render("{{ buildCustomCert .c .k }}", {"c": cert, "k": key})


# ----------------------------------------------------------------------------- bcrypt


def test_bcrypt_and_htpasswd() -> None:
    h = render('{{ bcrypt "secret" }}')
    assert h.startswith("$2a$10$") and len(h) == 60
    assert bcrypt.checkpw(b"secret", h.encode())
    user, _, h2 = render('{{ htpasswd "bob" "pässword" }}').partition(":")
    assert user == "bob" and bcrypt.checkpw("pässword".encode(), h2.encode())
    assert render('{{ htpasswd "a:b" "x" }}') == "invalid username: a:b"
    long_hash = render('{{ bcrypt (repeat 100 "x") }}')  # Go reads the first 72 bytes
    assert bcrypt.checkpw(b"x" * 72, long_hash.encode())


def test_crypto_libraries_load_lazily() -> None:
    code = ("import sys\n"
            "from tidegate.gotemplate.funcs import krakend_funcs\n"
            "from tidegate.gotemplate.template import TemplateSet\n"
            "ts = TemplateSet(krakend_funcs(''))\n"
            "ts.parse('t', '{{ upper \"x\" }}{{ sha256sum \"y\" }}')\n"
            "ts.execute('t', {})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cryptography', 'bcrypt')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_sha256_signature_hash_for_p384_ca() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    cert, _, _ = cert_and_key('genCAWithKey "x" 1 .k', {"k": pem})
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
