"""wM-Bus payload security: TPL mode 5 and mode 7 (AES-128-CBC), ELL AES-128-CTR, AFL CMAC."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from drivers.errors import DriverError

_BLOCK = 16
_ZERO_IV = bytes(16)


class WrongKey(DriverError):
    """Decryption produced no valid plaintext: wrong key or corrupt telegram."""


class KeyRequired(DriverError):
    """The telegram is encrypted and no key is configured for its meter."""


def _check_key(key: bytes) -> None:
    if len(key) != _BLOCK:
        raise DriverError(f"AES key must be 16 bytes, got {len(key)}")


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_key(key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    _check_key(key)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def ctr_crypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CTR is its own inverse: the same call encrypts and decrypts."""
    _check_key(key)
    cryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return cryptor.update(data) + cryptor.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    _check_key(key)
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def mode5_iv(m_field: bytes, a_field: bytes, access_number: int) -> bytes:
    """Mode 5 IV: manufacturer (2) + address (6) + access number repeated 8 times."""
    return m_field + a_field + bytes([access_number]) * 8


def mode7_key(key: bytes, derivation: int, counter: bytes, meter_id: bytes) -> bytes:
    """OMS KDF-1: CMAC(K, DC || MCR || ID || 0x07 * 7); DC 0x00 = Kenc, 0x01 = Kmac (meter->gw)."""
    return cmac(key, bytes([derivation]) + counter + meter_id + b"\x07" * 7)


def ell_iv(m_field: bytes, a_field: bytes, cc: int, session: bytes) -> bytes:
    """ELL CTR IV: M (2) + A (6) + CC + SN (4) + frame number 0 (2) + block counter 0."""
    return m_field + a_field + bytes([cc]) + session + b"\x00\x00\x00"


def decrypt_blocks(key: bytes, iv: bytes, data: bytes, blocks: int) -> bytes:
    """Decrypt the first `blocks` AES blocks of `data`; the rest of `data` stays as it is."""
    size = blocks * _BLOCK
    if size > len(data):
        raise WrongKey(f"header announces {blocks} encrypted blocks, payload has {len(data)} bytes")
    return cbc_decrypt(key, iv, data[:size]) + data[size:]


def macs_equal(expected: bytes, received: bytes) -> bool:
    return hmac.compare_digest(expected[: len(received)], received)
