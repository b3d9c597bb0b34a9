"""The prepay engine drives a DLMS meter's own breaker through its relay interface, and the
contactor-feedback check uses the state the meter reports (the real engine, store and
simulated meter; the other outputs stay on the simulated board)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.clock import FakeClock
from drivers.dlms.breakers import MeterBreakers, UnknownOutput
from drivers.dlms.client import Credentials
from drivers.dlms.counters import CounterFile
from drivers.dlms.disconnect import BreakerState, read_state, switch
from drivers.dlms.hdlc import Address
from drivers.dlms.read_profiles import read_profile
from drivers.dlms.reader import DlmsBus, MeterSettings
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import SimObjects
from gateway.wiring.prepay import BoardRelays
from prepay.engine import PrepayEngine
from prepay.relays import RelayIO
from tests.prepay.rig import Rig, site_config


class SiteRelays:
    """relay-1 / aux-1 are meter shop-1's own breaker; the rest is the board."""

    def __init__(self, breakers: RelayIO, board: RelayIO) -> None:
        self.breakers, self.board = breakers, board

    def _for(self, name: str) -> RelayIO:
        return self.breakers if name in ("relay-1", "aux-1") else self.board

    def drive(self, output: str, on: bool) -> None:
        self._for(output).drive(output, on)

    def commanded(self, output: str) -> bool | None:
        return self._for(output).commanded(output)

    def input_active(self, name: str) -> bool:
        return self._for(name).input_active(name)


async def test_prepay_opens_and_closes_the_meters_breaker(tmp_path: Path) -> None:
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects), Address(1, 17, 2))
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    meter = MeterSettings("shop-1", Credentials(), read_profile("generic"))

    async def apply(meter_id: str, connect: bool) -> BreakerState:
        return await bus.run(meter, lambda a: switch(a, connect))

    breakers = MeterBreakers(apply, {"relay-1": "shop-1"}, {"aux-1": "shop-1"})
    relays: RelayIO = breakers  # the shape prepay declares
    rig = Rig(tmp_path, site_config())
    rig.engine = PrepayEngine(rig.settings, rig.store, SiteRelays(relays, BoardRelays(rig.board)),
                              lambda: rig.now)
    rig.read("shop-1", "0")
    rig.engine.tick()  # no credit: the engine opens shop-1's relay
    assert breakers.commanded("relay-1") is False and objects.output_state is True
    await breakers.apply_pending()
    assert objects.actions == ["disconnect"] and not breakers.input_active("aux-1")
    objects.output_state, objects.control_state = True, 1  # bridged behind our back
    breakers.note("shop-1", await bus.run(meter, read_state))
    rig.engine.tick()
    assert "tamper_contactor_mismatch" in rig.kinds("shop-1")
    result = await _topup(rig)
    assert result["credited"]
    assert breakers.commanded("relay-1") is True
    await breakers.apply_pending()
    assert objects.actions[-1] == "reconnect" and breakers.input_active("aux-1")


async def _topup(rig: Rig) -> dict[str, object]:
    from prepay.commands import PrepayCommands

    rig.commands = PrepayCommands(rig.engine)
    return await rig.topup("shop-1", "20.00", "t1")


async def test_a_meter_that_does_not_answer_keeps_the_command_pending(tmp_path: Path) -> None:
    objects = SimObjects(FakeClock().wall_ms)
    far = HdlcServerLink(CosemServer(objects), Address(1, 17, 2))
    bus = DlmsBus(CounterFile(tmp_path / "c.json"), open_line=lambda: LoopbackStream(far))
    meter = MeterSettings("shop-1", Credentials(), read_profile("generic"), timeout_s=0.05)
    breakers = MeterBreakers(lambda m, on: bus.run(meter, lambda a: switch(a, on)),
                             {"relay-1": "shop-1"}, {"aux-1": "shop-1"})
    breakers.drive("relay-1", False)
    far.faults.silent = True
    await breakers.apply_pending()
    assert breakers.failures == 1 and objects.output_state is True
    far.faults.silent = False
    await breakers.apply_pending()
    assert objects.output_state is False and objects.actions == ["disconnect"]
    await breakers.apply_pending()  # nothing pending: nothing sent again
    assert objects.actions == ["disconnect"]
    with pytest.raises(UnknownOutput, match="relay-9"):
        breakers.drive("relay-9", True)
