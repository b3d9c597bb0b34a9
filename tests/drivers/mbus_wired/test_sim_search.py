"""The simulated bus and the secondary search: every meter of a 20- and a 250-meter bus found,
collisions as garbled bytes, search by manufacturer / medium, echo, slow and silent meters,
FCB repeats, multi-telegram meters, and the wire time of a search counted from its bytes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from drivers.mbus_wired import link
from drivers.mbus_wired import requests as rq
from drivers.mbus_wired.address import SecondaryAddress, SelectPattern, manufacturer_code
from drivers.mbus_wired.responses import parse_answer
from drivers.mbus_wired.search import ProbeResult, probe, scan_primary, search
from drivers.mbus_wired.session import Garbled, MbusMaster, classify
from drivers.mbus_wired.sim import REACTION_S, SimBus, SimLink, SimMeter, collide
from drivers.mbus_wired.simpty import meters_from_frames

CORPUS = Path(__file__).parents[2] / "corpus" / "mbus" / "frames.json"
FRAMES = {e["name"]: bytes.fromhex(e["frame_hex"]) for e in json.loads(CORPUS.read_text())}
FIXTURES = ("libmbus/itron_cf_55", "libmbus/tecson", "libmbus/kamstrup_382_005",
            "libmbus/abb_f95", "libmbus/LGB_G350")
MAKERS = ("ACW", "TEC", "KAM", "HYD", "LGB")
BAUD = 2400


def _meters(count: int, seed: int) -> list[SimMeter]:
    rnd = random.Random(seed)
    ids = rnd.sample(range(10**8), count)
    meters = []
    for index, number in enumerate(ids):
        kind = index % len(FIXTURES)
        base = SimMeter.from_frames([FRAMES[FIXTURES[kind]]])
        address = SecondaryAddress(f"{number:08d}", manufacturer_code(MAKERS[kind]), 1,
                                   base.header.medium)
        meters.append(base.with_address(address, 0))
    return meters


async def _search(bus: SimBus, base: SelectPattern | None = None) -> tuple[set[str], SimLink]:
    sim_link = SimLink(bus, BAUD)
    result = await search(MbusMaster(sim_link), base)
    assert not result.unresolved
    return {meter.address.text() for meter in result.meters}, sim_link


@pytest.mark.parametrize("count", [1, 20, 250])
async def test_search_finds_every_meter(count: int) -> None:
    meters = _meters(count, seed=count)
    found, _ = await _search(SimBus(meters))
    assert found == {meter.secondary.text() for meter in meters}


async def test_empty_bus_costs_one_probe() -> None:
    sim_link = SimLink(SimBus([]), BAUD)
    result = await search(MbusMaster(sim_link))
    assert result.meters == [] and result.probes == 1
    assert sim_link.elapsed_s == pytest.approx(link.wire_time_s(17, BAUD)
                                               + link.answer_timeout_s(BAUD))


async def test_wire_time_is_counted_from_bytes_and_timeouts() -> None:
    bus = SimBus(_meters(250, seed=250))
    sim_link = SimLink(bus, BAUD)
    result = await search(MbusMaster(sim_link))
    assert len(result.meters) == 250
    selects = sum(1 for r in bus.requests if r[6:7] == b"\x52")
    reads = sum(1 for r in bus.requests if r[:2] == b"\x10\x7b")   # after each E5
    found = len(result.meters)   # each one selected again by its exact address
    assert selects == result.probes + found
    garbled_reads = reads - found   # a collision: several RSP_UDs overlaid
    expected = (link.wire_time_s(sim_link.sent_bytes + sim_link.received_bytes, BAUD)
                + (selects - reads - found) * link.answer_timeout_s(BAUD)   # nobody selected
                + garbled_reads * link.inter_byte_timeout_s(BAUD)    # waiting for quiet
                + (2 * reads + found) * REACTION_S)   # E5 and the RSP_UD; the exact E5
    assert sim_link.elapsed_s == pytest.approx(expected)


async def test_collision_is_garbled_bytes_on_the_read() -> None:
    meters = _meters(2, seed=3)
    bus = SimBus(meters)
    select = rq.build_request(rq.SelectSecondary(SelectPattern(), True))
    assert bus.exchange(select, BAUD).data == b"\xe5"        # two E5s overlay to one
    read = rq.build_request(rq.ReqUd2(0xFD, True))
    garbled = bus.exchange(read, BAUD).data
    assert isinstance(classify(garbled, read), Garbled)
    result, _ = await probe(MbusMaster(SimLink(bus, BAUD)), SelectPattern())
    assert result is ProbeResult.COLLISION


async def test_search_by_manufacturer_and_medium() -> None:
    meters = _meters(20, seed=7)
    kam = manufacturer_code("KAM")
    found, _ = await _search(SimBus(meters), SelectPattern(manufacturer=kam))
    assert found == {m.secondary.text() for m in meters if m.secondary.manufacturer == kam}
    medium = meters[0].secondary.medium
    found, _ = await _search(SimBus(meters), SelectPattern(medium=medium))
    assert found == {m.secondary.text() for m in meters if m.secondary.medium == medium}


async def test_same_id_other_manufacturer_is_unresolved_unless_searched_by_maker() -> None:
    one, two = _meters(2, seed=11)
    twin = two.with_address(SecondaryAddress(one.secondary.id, two.secondary.manufacturer, 1,
                                             two.secondary.medium), 0)
    sim_link = SimLink(SimBus([one, twin]), BAUD)
    result = await search(MbusMaster(sim_link))
    assert result.meters == [] and [p.id for p in result.unresolved] == [one.secondary.id]
    found, _ = await _search(SimBus([one, twin]),
                             SelectPattern(manufacturer=twin.secondary.manufacturer))
    assert found == {twin.secondary.text()}


async def test_search_through_an_echoing_level_converter() -> None:
    meters = _meters(20, seed=5)
    found, _ = await _search(SimBus(meters, echo=True))
    assert len(found) == 20


async def test_slow_and_silent_meters() -> None:
    meters = _meters(5, seed=9)
    meters[0].delay_s = link.answer_timeout_s(BAUD) * 0.9     # slow but in time
    meters[1].delay_s = link.answer_timeout_s(BAUD) * 1.5     # too slow: lost
    meters[2].silent = True
    bus = SimBus(meters)
    sim_link = SimLink(bus, BAUD)
    result = await search(MbusMaster(sim_link))
    found = {m.address.text() for m in result.meters}
    assert meters[0].secondary.text() in found
    assert meters[1].secondary.text() not in found and sim_link.late
    assert meters[2].secondary.text() not in found
    assert {m.secondary.text() for m in meters[3:]} <= found


def test_collide_is_the_bitwise_and() -> None:
    assert collide([b"\xe5", b"\xe5"]) == b"\xe5"
    assert collide([b"\x68\x4d", b"\x68\x51\x16"]) == b"\x68\x41\x16"


async def test_fcb_repeat_and_multi_telegram_meter() -> None:
    meter = SimMeter.from_frames([FRAMES["libmbus/ELV-Elvaco-CMa10"], FRAMES["libmbus/LGB_G350"]],
                                 primary=3)
    bus = SimBus([meter])
    first = bus.exchange(rq.build_request(rq.ReqUd2(3, True)), BAUD).data
    again = bus.exchange(rq.build_request(rq.ReqUd2(3, True)), BAUD).data
    assert first == again   # same FCB: the answer was lost, the meter repeats it
    second = parse_answer(bus.exchange(rq.build_request(rq.ReqUd2(3, False)), BAUD).data)
    assert parse_answer(first) != second
    bus.exchange(rq.build_request(rq.SndNke(3)), BAUD)
    telegrams = await MbusMaster(SimLink(bus, BAUD)).read(3)
    assert [t.more_follow for t in telegrams] == [True, False]


async def test_commands_on_the_simulated_bus() -> None:
    (meter,) = _meters(1, seed=1)
    bus = SimBus([meter])
    master = MbusMaster(SimLink(bus, BAUD))
    await master.select(meter.secondary.pattern())
    await master.send(rq.SetPrimaryAddress(0xFD, True, 17))
    assert meter.primary == 17
    assert (await master.read(17))[0].address == 17
    await master.switch_baud(17, 9600)
    assert meter.baud == 9600
    assert (await master.read(17))[0].address == 17
    await master.reset(0xFF)


async def test_primary_scan() -> None:
    meters = _meters(3, seed=2)
    for primary, meter in zip((1, 7, 250), meters, strict=True):
        meter.primary = primary
    sim_link = SimLink(SimBus(meters), BAUD)
    scan = await scan_primary(MbusMaster(sim_link), range(1, 251))
    assert scan.answered == [1, 7, 250] and scan.garbled == []
    silent = 247 * (link.wire_time_s(5, BAUD) + link.answer_timeout_s(BAUD))
    answered = 3 * (link.wire_time_s(6, BAUD) + meters[0].delay_s)
    assert sim_link.elapsed_s == pytest.approx(silent + answered)


async def test_a_collision_that_checks_out_is_no_phantom_meter() -> None:
    # Two itron_cf_55 meters 393xxxxx: their RSP_UDs overlaid (bitwise AND) pass the checksum
    # with an id that matches 393FFFFF; only the exact re-select shows nobody has it.
    names = ("libmbus/abb_f95", "libmbus/tecson", "libmbus/kamstrup_382_005",
             "libmbus/itron_cf_55", "libmbus/LGB_G350")
    meters = meters_from_frames([[FRAMES[n]] for n in names], 250, seed=4)
    found, _ = await _search(SimBus(meters))
    assert found == {meter.secondary.text() for meter in meters}
