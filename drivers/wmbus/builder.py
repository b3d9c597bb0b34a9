"""Build wM-Bus frames (plain, mode 5, ELL) for simulators, benchmarks and round-trip tests."""

from __future__ import annotations

from drivers.mbus.records import RecordSpec, encode_record
from drivers.wmbus import link
from drivers.wmbus import security as sec
from drivers.wmbus.crc import crc_en13757

C_SND_NR = 0x44   # meter sends spontaneously, no reply expected
_BLOCK = 16


def build_payload(specs: list[RecordSpec]) -> bytes:
    return b"".join(encode_record(spec) for spec in specs)


def build_frame(manufacturer: str, meter_id: str, version: int, device_type: int,
                payload: bytes, *, access_number: int = 0, key: bytes | None = None,
                status: int = 0) -> bytes:
    """A CI 0x7A frame (CRCs stripped, as dongles deliver it); mode 5 when `key` is given."""
    m_field = link.manufacturer_code(manufacturer)
    a_field = link.id_bytes(meter_id) + bytes([version, device_type])
    config = 0
    if key is not None:
        plain = b"\x2f\x2f" + payload
        plain += b"\x2f" * (-len(plain) % _BLOCK)
        blocks = len(plain) // _BLOCK
        payload = sec.cbc_encrypt(key, sec.mode5_iv(m_field, a_field, access_number), plain)
        config = (5 << 8) | (blocks << 4)
    body = (bytes([C_SND_NR]) + m_field + a_field + bytes([0x7A, access_number, status])
            + config.to_bytes(2, "little") + payload)
    return bytes([len(body)]) + body


def add_format_a_crcs(frame: bytes) -> bytes:
    """Insert the format A block CRCs into a stripped frame (what the radio actually carries)."""
    out = bytearray()
    blocks = [frame[:10]] + [frame[i:i + _BLOCK] for i in range(10, len(frame), _BLOCK)]
    for block in blocks:
        out += block + crc_en13757(block).to_bytes(2, "big")
    return bytes(out)


_SIZES = (0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 8)   # data bytes per DIF low nibble


def build_compact_frame(manufacturer: str, meter_id: str, version: int, device_type: int,
                        specs: list[RecordSpec], *, ci: int = 0x79,
                        access_number: int = 0) -> bytes:
    """A compact frame (CI 0x79 no header, 0x7B short, 0x73 long header) carrying the values
    of `specs`: format signature (CRC of the DIF/VIF headers), data CRC (over the full
    records), then the values alone. Unencrypted, CRCs stripped."""
    records = [encode_record(spec) for spec in specs]
    cut = [len(r) - _SIZES[spec.data_field] for r, spec in zip(records, specs, strict=True)]
    headers = b"".join(r[:at] for r, at in zip(records, cut, strict=True))
    values = b"".join(r[at:] for r, at in zip(records, cut, strict=True))
    m_field = link.manufacturer_code(manufacturer)
    a_field = link.id_bytes(meter_id) + bytes([version, device_type])
    tpl = b""
    if ci in (0x73, 0x7B):
        tpl = bytes([access_number, 0, 0, 0])
    if ci == 0x73:
        tpl = a_field[:4] + m_field + a_field[4:] + tpl
    body = (bytes([C_SND_NR]) + m_field + a_field + bytes([ci]) + tpl
            + crc_en13757(headers).to_bytes(2, "little")
            + crc_en13757(b"".join(records)).to_bytes(2, "little") + values)
    return bytes([len(body)]) + body
