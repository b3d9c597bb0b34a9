"""The demo's wireless M-Bus site: a water and a heat meter heard through a simulated iM871A.

Used by the plugin's `simulate` capability (`gateway demo`). The dongle runs on the transport
kit's pty harness in a thread of this process; both meters send encrypted (mode 5) telegrams
whose registers grow from one telegram to the next, and their keys are in a key file the
config names, as an installer would write it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from drivers.mbus.records import RecordSpec
from drivers.plugin import Simulation
from drivers.wmbus.builder import build_frame, build_payload
from drivers.wmbus.keys import KeyStore
from drivers.wmbus.sim import DongleSimulator

WATER: Final = ("water-31", "31313131", "1F2E3D4C5B6A79880011223344556677")
HEAT: Final = ("heat-32", "32323232", "8899AABBCCDDEEFF0011223344556677")
DEVICE_WATER: Final = 0x07
DEVICE_HEAT: Final = 0x04
VIF_LITRES: Final = 0x13  # volume, 10^-3 m3
VIF_KWH: Final = 0x06  # energy, 10^3 Wh
# The access number is one byte: a meter's telegrams repeat after 256 of them.
TELEGRAMS_PER_METER: Final = 256
TELEGRAM_INTERVAL_S: Final = 4.0  # real meters send every few minutes; a demo wants to see them


def frames() -> list[bytes]:
    """Water and heat telegrams, alternating, each meter's registers growing."""
    out: list[bytes] = []
    for n in range(TELEGRAMS_PER_METER):
        for (_id, address, key), device, vif, raw in (
                (WATER, DEVICE_WATER, VIF_LITRES, 123_456 + 3 * n),
                (HEAT, DEVICE_HEAT, VIF_KWH, 4_711 + n // 8)):
            out.append(build_frame("KAM", address, 1, device,
                                   build_payload([RecordSpec(0xC, vif, raw)]),
                                   access_number=n, key=bytes.fromhex(key)))
    return out


def simulate(state_dir: Path, poll_interval_s: int) -> Simulation:
    state_dir.mkdir(parents=True, exist_ok=True)
    key_file = state_dir / "wmbus.keys"
    key_file.unlink(missing_ok=True)  # a fresh file each run: the keys are the site's own
    keys = KeyStore(key_file)
    for _id, address, key in (WATER, HEAT):
        keys.add(address, key)
    sim = DongleSimulator("im871a", frames(), state_dir / "im871a.tty",
                          interval_s=TELEGRAM_INTERVAL_S / 2)
    sim.start()
    toml = (f'[[bus]]\nid = "radio-1"\nport = "{sim.path}"\ndongle = "im871a"\n'
            f'link_mode = "T1"\nkey_file = "{key_file}"\n\n')
    for (meter_id, address, _key), commodity in ((WATER, "water"), (HEAT, "heat")):
        toml += (f'[[meter]]\nid = "{meter_id}"\nbus = "radio-1"\nprotocol = "wmbus"\n'
                 f'commodity = "{commodity}"\naddress = "{address}"\n\n')
    return Simulation(toml, 2, 1, sim.stop)
