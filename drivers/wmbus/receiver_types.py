"""What the wM-Bus receiver hands out: configured meters, decoded telegrams, meters heard
nearby and events, and who sent a frame."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.readings import Sample
from drivers.wmbus import link


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """A configured wireless meter; manufacturer / device type are checked when given."""

    manufacturer: str | None = None
    device_type: int | None = None


@dataclass(frozen=True, slots=True)
class MeterTelegram:
    """Readings decoded from one telegram of a configured meter."""

    meter: str
    ts_ms: int
    rssi_dbm: int | None
    samples: list[Sample]
    manufacturer: str
    device_type: int


@dataclass(slots=True)
class HeardMeter:
    """A meter heard nearby that is not configured (for the technician's scan)."""

    meter: str
    manufacturer: str
    device_type: int
    count: int
    last_rssi_dbm: int | None
    last_seen_ms: int


@dataclass(frozen=True, slots=True)
class WmbusEvent:
    """Something the service must record: kind is plaintext_from_keyed_meter, wrong_key,
    dongle_reset, dongle_reconnected or port_unavailable (at start, waiting for the dongle)."""

    kind: str
    meter: str | None
    ts_ms: int
    detail: str = ""


def frame_sender(frame: bytes) -> tuple[str, str, int]:
    """(meter id, manufacturer, device type) of the meter, from the TPL long header if any."""
    ci = frame[10]
    if ci == 0x72 and len(frame) >= 19:
        return link.id_text(frame[11:15]), link.manufacturer_name(frame[15:17]), frame[18]
    return link.id_text(frame[4:8]), link.manufacturer_name(frame[2:4]), frame[9]
