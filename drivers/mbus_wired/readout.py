"""A wired M-Bus readout (every telegram of one meter's answer) as the gateway's readings.

The medium of the fixed header is the EN 13757-3 device type the shared mapping needs (energy
of an electricity meter is import energy, of a heat meter heat energy). A record whose value
was out of range is reported as a FrameError for that record, to be counted for the meter; the
other records still give their samples.
"""

from __future__ import annotations

from drivers.errors import FrameError
from drivers.mbus.mapping import records_to_samples
from drivers.mbus.records import Record
from drivers.mbus_wired.responses import FixedHeader, RspUd
from drivers.readings import Sample

UNKNOWN_MEDIUM = 0x0F


def readout_records(telegrams: list[RspUd]) -> list[Record]:
    """The records of all telegrams, in order."""
    return [record for telegram in telegrams for record in telegram.records]


def device_type(telegrams: list[RspUd]) -> int:
    for telegram in telegrams:
        if isinstance(telegram.header, FixedHeader):
            return telegram.header.medium
    return UNKNOWN_MEDIUM


def readout_samples(telegrams: list[RspUd]) -> tuple[list[Sample], list[FrameError]]:
    """Current values as Samples (storage 0, instantaneous; tariffs `_tN`) and a FrameError
    per record whose value could not be held exactly."""
    records = readout_records(telegrams)
    samples = records_to_samples(records, device_type(telegrams))
    return samples, [FrameError(record.error) for record in records if record.error]
