"""The client session (HDLC link, wrapper link, association, services) against the simulated
meter: in memory (the simulator answering synchronously), byte by byte through the in-memory
stream, and over a real pty (HDLC) and a real TCP socket (wrapper)."""

from __future__ import annotations

import os
import tty

import pytest

from core.clock import FakeClock
from drivers.dlms.axdr import Data, Tag
from drivers.dlms.client import Association, AssociationState, Authentication, Credentials
from drivers.dlms.cosem import ScalerUnit, obis_bytes, register_value
from drivers.dlms.errors import CipherError, ReplayRefused, ServiceError
from drivers.dlms.hdlc import Address
from drivers.dlms.link import LinkParameters
from drivers.dlms.links import HdlcLink, Timeouts, WrapperLink
from drivers.dlms.profile_read import range_access
from drivers.dlms.security import InvocationCounterGuard, Keys
from drivers.dlms.server import CosemServer, ServerSettings
from drivers.dlms.sim import HdlcServerLink, LoopbackStream, PtyMeter, TcpMeter
from drivers.dlms.sim_objects import (
    CAPTURE_PERIOD_S,
    CLOCK_OBIS,
    DISCONNECTOR_OBIS,
    ENERGY_OBIS,
    LOAD_PROFILE_OBIS,
    SimObjects,
    date_time_data,
)
from drivers.errors import ChecksumError, DeviceRejected, DeviceTimeout
from drivers.transport.memory import MemoryStream
from drivers.transport.serial import SerialStream
from drivers.transport.stream import LineSettings
from drivers.transport.tcp import TcpStream

KEYS = Keys(bytes(range(16)), bytes(range(16, 32)))
METER = Address(1, 17, 2)
FAST = Timeouts(response_s=0.2, inter_byte_s=0.1)
VOLTAGE = obis_bytes("1-0:32.7.0.255")


class Counters:
    """The client's counter and the server-counter guard, in memory."""

    def __init__(self, start: int = 0) -> None:
        self.own = start
        self.server_last: int | None = None
        self.guard = InvocationCounterGuard(lambda: self.server_last, self._keep)

    def _keep(self, value: int) -> None:
        self.server_last = value

    def next(self) -> int:
        self.own += 1
        return self.own


def _meter(clock: FakeClock, limits: LinkParameters | None = None,
           **settings: object) -> tuple[SimObjects, CosemServer, HdlcServerLink]:
    objects = SimObjects(clock.wall_ms)
    app = CosemServer(objects, ServerSettings(keys=KEYS, **settings))  # type: ignore[arg-type]
    far = HdlcServerLink(app, METER, limits) if limits else HdlcServerLink(app, METER)
    return objects, app, far


def _association(link: HdlcLink | WrapperLink, auth: Authentication,
                 counters: Counters | None = None, keys: Keys = KEYS,
                 password: bytes = b"00000000") -> Association:
    counters = counters or Counters()
    hls = auth is Authentication.HLS_GMAC
    creds = Credentials(auth, password=password if auth is Authentication.LLS else None,
                        keys=keys if hls else None, ciphered=hls)
    return Association(link, creds, own_counter=counters.next, server_guard=counters.guard)


CLIENT_OF = {Authentication.NONE: 16, Authentication.LLS: 17, Authentication.HLS_GMAC: 1}


async def _connected(far: HdlcServerLink, auth: Authentication,
                     proposed: LinkParameters | None = None,
                     counters: Counters | None = None) -> tuple[HdlcLink, Association]:
    link = HdlcLink(LoopbackStream(far), Address(CLIENT_OF[auth]), METER, timeouts=FAST,
                    **({"proposed": proposed} if proposed else {}))
    await link.open()
    association = _association(link, auth, counters)
    await association.associate()
    return link, association


@pytest.mark.parametrize("auth", list(Authentication))
async def test_every_authentication_reads_a_register_exactly(auth: Authentication) -> None:
    clock = FakeClock()
    _, _, far = _meter(clock)
    link, association = await _connected(far, auth)
    value = await association.get(3, VOLTAGE, 2)
    scaler = ScalerUnit.from_data(await association.get(3, VOLTAGE, 3))
    assert str(register_value("1-0:32.7.0.255", value, scaler).value) == "230.1"
    assert scaler.unit == "V"
    await association.release()
    await link.close()
    assert association.state is AssociationState.RELEASED


async def test_window_and_max_info_are_negotiated_and_segments_go_both_ways() -> None:
    clock = FakeClock()
    _, app, far = _meter(clock, LinkParameters(max_info_tx=32, max_info_rx=48, window_tx=3,
                                               window_rx=2))
    clock.step(40 * CAPTURE_PERIOD_S)  # 45 rows: a buffer far beyond one 32-byte frame
    proposed = LinkParameters(max_info_tx=256, max_info_rx=256, window_tx=7, window_rx=7)
    link, association = await _connected(far, Authentication.HLS_GMAC, proposed)
    assert link.agreed == LinkParameters(max_info_tx=48, max_info_rx=32, window_tx=2,
                                         window_rx=3)
    app.settings.block_size = 4096  # one GET answer, many HDLC segments
    buffer = await association.get(7, LOAD_PROFILE_OBIS, 2)
    assert isinstance(buffer.value, tuple) and len(buffer.value) == 45


async def test_get_block_transfer_returns_the_whole_buffer() -> None:
    clock = FakeClock()
    objects, _, far = _meter(clock)
    clock.step(100 * CAPTURE_PERIOD_S)
    _, association = await _connected(far, Authentication.NONE)
    buffer = await association.get(7, LOAD_PROFILE_OBIS, 2)
    rows = objects.profile_rows()
    assert isinstance(buffer.value, tuple) and len(buffer.value) == len(rows) == 105
    last = buffer.value[-1].value
    assert isinstance(last, tuple) and last[1].value == rows[-1][1]


async def test_selective_access_by_range_reads_only_the_rows_asked() -> None:
    clock = FakeClock()
    objects, _, far = _meter(clock)
    clock.step(20 * CAPTURE_PERIOD_S)
    _, association = await _connected(far, Authentication.LLS)
    rows = objects.profile_rows()
    buffer = await association.get(7, LOAD_PROFILE_OBIS, 2, range_access(rows[3][0], rows[5][0]))
    assert isinstance(buffer.value, tuple)
    assert [r.value[1].value for r in buffer.value] == [r[1] for r in rows[3:6]]  # type: ignore


async def test_get_with_list_gives_each_value_or_its_refusal() -> None:
    _, _, far = _meter(FakeClock())
    _, association = await _connected(far, Authentication.NONE)
    results = await association.get_many([(3, ENERGY_OBIS, 2), (3, obis_bytes("1-0:9.9.9.255"),
                                                                2)])
    assert isinstance(results[0], Data) and results[1] == 4  # object_undefined


async def test_set_clock_and_a_refused_set() -> None:
    clock = FakeClock()
    objects, _, far = _meter(clock)
    _, association = await _connected(far, Authentication.HLS_GMAC)
    later = objects.now().replace(microsecond=0)
    await association.set(8, CLOCK_OBIS, 2, date_time_data(later.replace(year=later.year + 1)))
    assert objects.now().year == later.year + 1
    with pytest.raises(ServiceError, match="read_write_denied"):
        await association.set(3, ENERGY_OBIS, 2, Data(Tag.DOUBLE_LONG_UNSIGNED, 0))


async def test_action_opens_and_closes_the_disconnector() -> None:
    objects, _, far = _meter(FakeClock())
    _, association = await _connected(far, Authentication.HLS_GMAC)
    await association.action(70, DISCONNECTOR_OBIS, 1)
    assert (await association.get(70, DISCONNECTOR_OBIS, 3)).value == 0
    await association.action(70, DISCONNECTOR_OBIS, 2)
    assert (await association.get(70, DISCONNECTOR_OBIS, 2)).value is True
    assert objects.actions == ["disconnect", "reconnect"]


async def test_wrong_password_and_refused_association_are_rejections() -> None:
    _, _, far = _meter(FakeClock())
    link = HdlcLink(LoopbackStream(far), Address(17), METER, timeouts=FAST)
    await link.open()
    with pytest.raises(DeviceRejected, match="authentication_failure"):
        await _association(link, Authentication.LLS, password=b"wrong").associate()
    _, _, refusing = _meter(FakeClock(), refuse_association=True)
    link = HdlcLink(LoopbackStream(refusing), Address(16), METER, timeouts=FAST)
    await link.open()
    with pytest.raises(DeviceRejected, match="rejected_permanent"):
        await _association(link, Authentication.NONE).associate()


async def test_a_meter_with_another_key_refuses_and_its_answers_do_not_open() -> None:
    _, _, far = _meter(FakeClock())
    link = HdlcLink(LoopbackStream(far), Address(1), METER, timeouts=FAST)
    await link.open()
    other = Keys(bytes(16), bytes(16))
    with pytest.raises(DeviceRejected, match="rejected_permanent"):  # it cannot open our AARQ
        await _association(link, Authentication.HLS_GMAC, keys=other).associate()
    _, _, far = _meter(FakeClock())
    link, association = await _connected(far, Authentication.HLS_GMAC)
    far.app.settings.keys = other  # the meter's key changed under a running association
    with pytest.raises(ServiceError, match="deciphering_error"):
        await association.get(3, ENERGY_OBIS, 2)


async def test_an_old_server_counter_is_refused() -> None:
    _, _, far = _meter(FakeClock())
    counters = Counters()
    counters.server_last = 1_000_000  # the meter's counter seen before is far ahead
    link = HdlcLink(LoopbackStream(far), Address(1), METER, timeouts=FAST)
    await link.open()
    with pytest.raises(ReplayRefused):
        await _association(link, Authentication.HLS_GMAC, counters).associate()


async def test_the_meter_refuses_a_reused_client_counter() -> None:
    _, _, far = _meter(FakeClock())
    _, association = await _connected(far, Authentication.HLS_GMAC, counters=Counters(0))
    await association.release()
    # a gateway that lost its counter starts from 0 again: the meter says so
    with pytest.raises((CipherError, ServiceError, DeviceRejected)):
        await _connected(far, Authentication.HLS_GMAC, counters=Counters(0))


async def test_a_silent_meter_is_a_timeout() -> None:
    _, _, far = _meter(FakeClock())
    far.faults.silent = True
    link = HdlcLink(LoopbackStream(far), Address(16), METER, timeouts=FAST)
    with pytest.raises(DeviceTimeout):
        await link.open()


async def test_one_bad_fcs_is_asked_for_again_and_always_bad_fails() -> None:
    _, _, far = _meter(FakeClock())
    link, association = await _connected(far, Authentication.NONE)
    far.faults.spoil_fcs = 1
    assert (await association.get(3, ENERGY_OBIS, 2)).value == 12_345_678 + 4 * 250
    assert link.retries == 1
    far.faults.spoil_fcs = 10
    with pytest.raises(ChecksumError):
        await association.get(3, ENERGY_OBIS, 2)


class Recording(LoopbackStream):
    def __init__(self, far: HdlcServerLink) -> None:
        super().__init__(far)
        self.answers: list[bytes] = []

    def _received(self, chunk: bytes) -> None:
        self.answers.append(chunk)
        super()._received(chunk)


async def test_the_session_reads_golden_answers_fed_one_byte_at_a_time() -> None:
    _, _, far = _meter(FakeClock())
    recording = Recording(far)
    link = HdlcLink(recording, Address(16), METER, timeouts=FAST)
    await link.open()
    association = _association(link, Authentication.NONE)
    await association.associate()
    expected = await association.get(3, VOLTAGE, 2)
    memory = MemoryStream(protocol="dlms")
    for answer in recording.answers:
        memory.reply_after_write([answer[i:i + 1] for i in range(len(answer))])
    replay = HdlcLink(memory, Address(16), METER, timeouts=FAST)
    await replay.open()
    again = _association(replay, Authentication.NONE)
    await again.associate()
    assert await again.get(3, VOLTAGE, 2) == expected


async def test_hdlc_over_a_real_pty() -> None:
    _, _, far = _meter(FakeClock())
    meter = await PtyMeter(far).start()
    fd = os.open(meter.gateway_path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    stream = SerialStream(fd, LineSettings(9600), name="pty", protocol="dlms")
    try:
        link = HdlcLink(stream, Address(1), METER)
        await link.open()
        association = _association(link, Authentication.HLS_GMAC)
        await association.associate()
        assert (await association.get(3, ENERGY_OBIS, 2)).value == 12_345_678 + 4 * 250
        await association.release()
        await link.close()
    finally:
        stream.close()
        await meter.stop()


async def test_wrapper_over_a_real_tcp_socket() -> None:
    objects = SimObjects(FakeClock().wall_ms)
    meter = await TcpMeter(CosemServer(objects, ServerSettings(keys=KEYS))).start()
    stream = await TcpStream.connect("127.0.0.1", meter.port, protocol="dlms", timeout_s=5)
    try:
        link = WrapperLink(stream, 1)
        association = _association(link, Authentication.HLS_GMAC)
        await association.associate()
        assert (await association.get(3, VOLTAGE, 2)).value == 2301
        await association.release()
    finally:
        stream.close()
        await meter.stop()


async def test_get_with_list_in_blocks() -> None:
    clock = FakeClock()
    _, app, far = _meter(clock)
    clock.step(30 * CAPTURE_PERIOD_S)
    app.settings.block_size = 40
    _, association = await _connected(far, Authentication.HLS_GMAC)
    results = await association.get_many([(7, LOAD_PROFILE_OBIS, 2), (3, ENERGY_OBIS, 2)])
    assert isinstance(results[0], Data) and isinstance(results[0].value, tuple)
    assert len(results[0].value) == 35
    assert isinstance(results[1], Data) and results[1].value == 12_345_678 + 34 * 250


async def test_hls_gmac_without_ciphering() -> None:
    _, _, far = _meter(FakeClock(), ciphered_clients=frozenset())
    link = HdlcLink(LoopbackStream(far), Address(1), METER, timeouts=FAST)
    await link.open()
    counters = Counters()
    association = Association(link, Credentials(Authentication.HLS_GMAC, keys=KEYS),
                              own_counter=counters.next, server_guard=counters.guard)
    await association.associate()
    assert (await association.get(3, VOLTAGE, 2)).value == 2301
    assert counters.own == 1  # only f(StoC) used a counter: the APDUs went plain
