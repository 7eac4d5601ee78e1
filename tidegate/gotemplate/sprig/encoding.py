"""Sprig encoding/crypto helpers: base64/32, hashes, JSON, derivePassword, AES, uuid."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
import uuid
import zlib
from typing import Any

from tidegate.golang import json_values
from tidegate.golang.types import from_bytes, go_bytes

from ..funcdef import ANY, INT, STRING, UINT32, GoError, GoFunc, fn

FUNCS: dict[str, GoFunc] = {}

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def go_b64decode(s: str, alphabet: str = _B64, quantum: int = 4) -> bytes:
    """base64/base32 StdEncoding.DecodeString with Go's CorruptInputError offsets."""
    src = go_bytes(s)
    dmap = {ord(c): i for i, c in enumerate(alphabet)}
    bits = 6 if quantum == 4 else 5
    out = bytearray()
    si = 0
    n = len(src)
    name = "base64" if quantum == 4 else "base32"

    def corrupt(off: int) -> GoError:
        return GoError(f"illegal {name} data at input byte {off}")

    while True:
        vals: list[int] = []
        j = 0
        end = False
        while j < quantum:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise corrupt(si - j)
            c = src[si]
            si += 1
            if c in dmap:
                vals.append(dmap[c])
                j += 1
                continue
            if c in (10, 13):
                continue
            if c != 61:
                raise corrupt(si - 1)
            # padding
            need = {4: {2: 1, 3: 0}, 8: {2: 5, 4: 3, 5: 2, 7: 0}}[quantum]
            if j not in need:
                raise corrupt(si - 1)
            for _ in range(need[j]):
                while si < n and src[si] in (10, 13):
                    si += 1
                if si == n:
                    raise corrupt(n)
                if src[si] != 61:
                    raise corrupt(si - 1)
                si += 1
            while si < n and src[si] in (10, 13):
                si += 1
            if si < n:
                raise corrupt(si)
            end = True
            break
        acc = 0
        for v in vals:
            acc = (acc << bits) | v
        total_bits = bits * len(vals)
        nbytes = total_bits // 8
        acc >>= total_bits - nbytes * 8
        out += acc.to_bytes(nbytes, "big") if nbytes else b""
        if end:
            return bytes(out)


def _b64dec(s: str) -> str:
    try:
        return from_bytes(go_b64decode(s))
    except GoError as e:
        return str(e)


def _b32dec(s: str) -> str:
    try:
        return from_bytes(go_b64decode(s, _B32, 8))
    except GoError as e:
        return str(e)


fn(FUNCS, "b64enc", (STRING,), returns=STRING)(
    lambda s: base64.b64encode(go_bytes(s)).decode("ascii"))
fn(FUNCS, "b64dec", (STRING,), returns=STRING)(_b64dec)
fn(FUNCS, "b32enc", (STRING,), returns=STRING)(
    lambda s: base64.b32encode(go_bytes(s)).decode("ascii"))
fn(FUNCS, "b32dec", (STRING,), returns=STRING)(_b32dec)
fn(FUNCS, "sha1sum", (STRING,), returns=STRING)(lambda s: hashlib.sha1(go_bytes(s)).hexdigest())
fn(FUNCS, "sha256sum", (STRING,), returns=STRING)(
    lambda s: hashlib.sha256(go_bytes(s)).hexdigest())
fn(FUNCS, "adler32sum", (STRING,), returns=STRING)(lambda s: str(zlib.adler32(go_bytes(s))))


def _to_json(v: Any) -> str:
    try:
        return json_values.encode(v)
    except json_values.JSONError:
        return ""


def _must_to_json(v: Any) -> str:
    try:
        return json_values.encode(v)
    except json_values.JSONError as e:
        raise GoError(str(e)) from None


def _to_pretty(v: Any) -> str:
    try:
        return json_values.encode(v, indent="  ")
    except json_values.JSONError:
        return ""


def _must_to_pretty(v: Any) -> str:
    try:
        return json_values.encode(v, indent="  ")
    except json_values.JSONError as e:
        raise GoError(str(e)) from None


def _must_to_raw(v: Any) -> str:
    try:
        return json_values.encode(v, escape_html=False)
    except json_values.JSONError as e:
        raise GoError(str(e)) from None


def _from_json(s: str) -> Any:
    try:
        return json_values.decode(go_bytes(s))
    except json_values.JSONError:
        return None


def _must_from_json(s: str) -> Any:
    try:
        return json_values.decode(go_bytes(s))
    except json_values.JSONError as e:
        raise GoError(str(e)) from None


fn(FUNCS, "toJson", (ANY,), returns=STRING)(_to_json)
fn(FUNCS, "mustToJson", (ANY,), returns=STRING)(_must_to_json)
fn(FUNCS, "toPrettyJson", (ANY,), returns=STRING)(_to_pretty)
fn(FUNCS, "mustToPrettyJson", (ANY,), returns=STRING)(_must_to_pretty)
fn(FUNCS, "toRawJson", (ANY,), returns=STRING)(_must_to_raw)
fn(FUNCS, "mustToRawJson", (ANY,), returns=STRING)(_must_to_raw)
fn(FUNCS, "fromJson", (STRING,))(_from_json)
fn(FUNCS, "mustFromJson", (STRING,))(_must_from_json)

_MP_SEED = b"com.lyndir.masterpassword"
_MP_TEMPLATES = {
    "maximum": ["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
    "long": ["CvcvnoCvcvCvcv", "CvcvCvcvnoCvcv", "CvcvCvcvCvcvno", "CvccnoCvcvCvcv",
             "CvccCvcvnoCvcv", "CvccCvcvCvcvno", "CvcvnoCvccCvcv", "CvcvCvccnoCvcv",
             "CvcvCvccCvcvno", "CvcvnoCvcvCvcc", "CvcvCvcvnoCvcc", "CvcvCvcvCvccno",
             "CvccnoCvccCvcv", "CvccCvccnoCvcv", "CvccCvccCvcvno", "CvcvnoCvccCvcc",
             "CvcvCvccnoCvcc", "CvcvCvccCvccno", "CvccnoCvcvCvcc", "CvccCvcvnoCvcc",
             "CvccCvcvCvccno"],
    "medium": ["CvcnoCvc", "CvcCvcno"],
    "short": ["Cvcn"],
    "basic": ["aaanaaan", "aannaaan", "aaannaaa"],
    "pin": ["nnnn"],
}
_MP_CHARS = {
    "V": "AEIOU", "C": "BCDFGHJKLMNPQRSTVWXYZ", "v": "aeiou", "c": "bcdfghjklmnpqrstvwxyz",
    "A": "AEIOUBCDFGHJKLMNPQRSTVWXYZ",
    "a": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
    "n": "0123456789", "o": "@&%?,=[]_:-+*$#!'^~;()/.",
    "x": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
}


@fn(FUNCS, "derivePassword", (UINT32, STRING, STRING, STRING, STRING), returns=STRING)
def derive_password(counter: int, ptype: str, password: str, user: str, site: str) -> str:
    templates = _MP_TEMPLATES.get(ptype)
    if templates is None:
        return f"cannot find password template {ptype}"
    ub, sb = go_bytes(user), go_bytes(site)
    salt = _MP_SEED + struct.pack(">I", len(ub)) + ub
    key = hashlib.scrypt(go_bytes(password), salt=salt, n=32768, r=8, p=2, dklen=64,
                         maxmem=128 * 1024 * 1024)
    msg = _MP_SEED + struct.pack(">I", len(sb)) + sb + struct.pack(">I", counter)
    seed = hmac.new(key, msg, hashlib.sha256).digest()
    temp = templates[seed[0] % len(templates)]
    return "".join(_MP_CHARS[e][seed[i + 1] % len(_MP_CHARS[e])] for i, e in enumerate(temp))


@fn(FUNCS, "encryptAES", (STRING, STRING), returns=STRING)
def encrypt_aes(password: str, plaintext: str) -> str:
    from .aes import AES

    if plaintext == "":
        return ""
    key = (go_bytes(password) + bytes(32))[:32]
    content = go_bytes(plaintext)
    pad = 16 - len(content) % 16
    content += bytes([pad]) * pad
    iv = os.urandom(16)
    return base64.b64encode(iv + AES(key).encrypt_cbc(iv, content)).decode("ascii")


@fn(FUNCS, "decryptAES", (STRING, STRING), returns=STRING)
def decrypt_aes(password: str, crypt64: str) -> str:
    from .aes import AES

    if crypt64 == "":
        return ""
    key = (go_bytes(password) + bytes(32))[:32]
    crypt = go_b64decode(crypt64)
    if len(crypt) < 16:
        raise GoError(f"runtime error: slice bounds out of range [:16] with capacity {len(crypt)}")
    iv, body = crypt[:16], crypt[16:]
    if len(body) % 16:
        raise GoError("crypto/cipher: input not full blocks")
    dec = AES(key).decrypt_cbc(iv, body)
    if not dec:
        raise GoError("runtime error: index out of range [-1]")
    n = len(dec) - dec[-1]
    if n < 0:
        raise GoError(f"runtime error: slice bounds out of range [:{n}]")
    return from_bytes(dec[:n])


@fn(FUNCS, "randBytes", (INT,), returns=STRING)
def rand_bytes(n: int) -> str:
    if n < 0:
        raise GoError("runtime error: makeslice: len out of range")
    return base64.b64encode(os.urandom(n)).decode("ascii")


fn(FUNCS, "uuidv4", (), returns=STRING)(lambda: str(uuid.uuid4()))


__all__ = ["FUNCS", "binascii", "go_b64decode"]

