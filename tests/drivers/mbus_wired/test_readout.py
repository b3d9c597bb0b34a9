"""A readout's telegrams as the gateway's readings: device type from the medium, records of
every telegram of a multi-telegram meter, out-of-range values reported per record."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from drivers.mbus_wired import link
from drivers.mbus_wired.readout import device_type, readout_samples
from drivers.mbus_wired.responses import FixedHeader, RspUd, decode_rsp_ud
from drivers.mbus_wired.session import MbusMaster
from drivers.mbus_wired.sim import SimBus, SimLink, SimMeter
from drivers.readings import Sample

CORPUS = Path(__file__).parents[2] / "corpus" / "mbus" / "frames.json"
FRAMES = {e["name"]: bytes.fromhex(e["frame_hex"]) for e in json.loads(CORPUS.read_text())}


def test_electricity_meter_gives_import_energy() -> None:
    telegram = decode_rsp_ud(FRAMES["libmbus/kamstrup_382_005"])
    samples, errors = readout_samples([telegram])
    assert device_type([telegram]) == 0x02 and errors == []
    assert Sample("import_active_energy", Decimal("0.000"), "kWh") in samples


async def test_multi_telegram_readout_maps_every_telegram() -> None:
    meter = SimMeter.from_frames([FRAMES["libmbus/Elster-F2"], FRAMES["libmbus/LGB_G350"]],
                                 primary=2)
    telegrams = await MbusMaster(SimLink(SimBus([meter]))).read(2)
    samples, _ = readout_samples(telegrams)
    quantities = {sample.quantity for sample in samples}
    assert {"heat_energy", "volume"} <= quantities   # first telegram: heat; second: gas volume


def test_value_out_of_range_is_a_frame_error_for_that_record() -> None:
    header = FixedHeader("12345678", 0x0477, 1, 7, 1, 0, 0)
    # A 64-bit volume x 10^31 (VIF 17 and ten x10^3 VIFEs): beyond the bounded context.
    huge = bytes.fromhex("07" "97" + "FD" * 9 + "7D" + "FF" * 7 + "7F")
    payload = bytes.fromhex("0413F4010000") + huge
    samples, errors = readout_samples([RspUd(1, link.RSP_UD, 0x72, header, payload)])
    assert Sample("volume", Decimal("0.500"), "m3") in samples
    assert len(errors) == 1 and "out of range" in str(errors[0])
