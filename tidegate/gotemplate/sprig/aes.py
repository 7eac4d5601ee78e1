"""A small pure-Python AES (FIPS-197) with CBC, for Sprig's encryptAES/decryptAES.

Only templates use it, on short strings, so clarity beats speed; no third-party crypto needed.
"""

from __future__ import annotations


def _xtime(a: int) -> int:
    a <<= 1
    return (a ^ 0x11B) & 0xFF if a & 0x100 else a


def _build_sbox() -> tuple[list[int], list[int]]:
    sbox = [0] * 256
    inv = [0] * 256
    p = q = 1
    while True:
        p = p ^ _xtime(p)  # multiply p by 3
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) \
            ^ ((q << 4) | (q >> 4))
        x = (x ^ 0x63) & 0xFF
        sbox[p] = x
        inv[x] = p
        if p == 1:
            break
    sbox[0] = 0x63
    inv[0x63] = 0
    return sbox, inv


_SBOX, _INV_SBOX = _build_sbox()


def _mul(a: int, b: int) -> int:
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = _xtime(a)
        b >>= 1
    return r


class AES:
    """AES block cipher (128/192/256-bit keys)."""

    def __init__(self, key: bytes) -> None:
        nk = len(key) // 4
        if len(key) not in (16, 24, 32):
            raise ValueError(f"crypto/aes: invalid key size {len(key)}")
        self.nr = nk + 6
        w = [list(key[4 * i:4 * i + 4]) for i in range(nk)]
        rcon = 1
        for i in range(nk, 4 * (self.nr + 1)):
            t = list(w[i - 1])
            if i % nk == 0:
                t = t[1:] + t[:1]
                t = [_SBOX[b] for b in t]
                t[0] ^= rcon
                rcon = _xtime(rcon)
            elif nk > 6 and i % nk == 4:
                t = [_SBOX[b] for b in t]
            w.append([a ^ b for a, b in zip(w[i - nk], t, strict=True)])
        self.rk = [[b for word in w[4 * r:4 * r + 4] for b in word] for r in range(self.nr + 1)]

    def encrypt_block(self, block: bytes) -> bytes:
        s = [b ^ k for b, k in zip(block, self.rk[0], strict=True)]
        for r in range(1, self.nr + 1):
            s = [_SBOX[b] for b in s]
            s = [s[(i + 4 * (i % 4)) % 16] for i in range(16)]  # shift rows
            if r != self.nr:
                s = _mix(s, (2, 3, 1, 1))
            s = [b ^ k for b, k in zip(s, self.rk[r], strict=True)]
        return bytes(s)

    def decrypt_block(self, block: bytes) -> bytes:
        s = [b ^ k for b, k in zip(block, self.rk[self.nr], strict=True)]
        for r in range(self.nr - 1, -1, -1):
            s = [s[(i - 4 * (i % 4)) % 16] for i in range(16)]  # inverse shift rows
            s = [_INV_SBOX[b] for b in s]
            s = [b ^ k for b, k in zip(s, self.rk[r], strict=True)]
            if r != 0:
                s = _mix(s, (14, 11, 13, 9))
        return bytes(s)

    def encrypt_cbc(self, iv: bytes, data: bytes) -> bytes:
        out = bytearray()
        prev = iv
        for i in range(0, len(data), 16):
            prev = self.encrypt_block(bytes(a ^ b for a, b in zip(data[i:i + 16], prev,
                                                                   strict=True)))
            out += prev
        return bytes(out)

    def decrypt_cbc(self, iv: bytes, data: bytes) -> bytes:
        out = bytearray()
        prev = iv
        for i in range(0, len(data), 16):
            blk = data[i:i + 16]
            out += bytes(a ^ b for a, b in zip(self.decrypt_block(blk), prev, strict=True))
            prev = blk
        return bytes(out)


def _mix(s: list[int], m: tuple[int, int, int, int]) -> list[int]:
    out = [0] * 16
    for c in range(4):
        col = s[4 * c:4 * c + 4]
        for r in range(4):
            out[4 * c + r] = (_mul(col[0], m[(0 - r) % 4]) ^ _mul(col[1], m[(1 - r) % 4])
                              ^ _mul(col[2], m[(2 - r) % 4]) ^ _mul(col[3], m[(3 - r) % 4]))
    return out
