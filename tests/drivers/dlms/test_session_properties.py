"""Properties of the session and the simulator's link: any chunking of the meter's answers,
any garbage fed to the meter, a damaged frame anywhere in a window."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.clock import FakeClock
from drivers.dlms.client import Association, Authentication, Credentials
from drivers.dlms.hdlc import Address
from drivers.dlms.link import LinkParameters
from drivers.dlms.links import HdlcLink, Timeouts
from drivers.dlms.server import CosemServer
from drivers.dlms.sim import HdlcServerLink, LoopbackStream
from drivers.dlms.sim_objects import CAPTURE_PERIOD_S, LOAD_PROFILE_OBIS, SimObjects
from drivers.transport.memory import MemoryStream
from tests.harness.lingering import run_checked

METER = Address(1, 17, 2)
FAST = Timeouts(response_s=0.2, inter_byte_s=0.1)


class Recording(LoopbackStream):
    def __init__(self, far: HdlcServerLink) -> None:
        super().__init__(far)
        self.answers: list[bytes] = []

    def _received(self, chunk: bytes) -> None:
        self.answers.append(chunk)
        super()._received(chunk)


async def _read_buffer(link: HdlcLink) -> object:
    await link.open()
    association = Association(link, Credentials(Authentication.NONE))
    await association.associate()
    return await association.get(7, LOAD_PROFILE_OBIS, 2)


def _golden() -> tuple[list[bytes], object]:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    clock.step(12 * CAPTURE_PERIOD_S)
    recording = Recording(HdlcServerLink(CosemServer(objects), METER,
                                         LinkParameters(64, 64, 1, 1)))
    value = run_checked(_read_buffer(HdlcLink(recording, Address(16), METER, timeouts=FAST)))
    return recording.answers, value


ANSWERS, VALUE = _golden()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_chunking_of_the_answers_reads_the_same(data: st.DataObject) -> None:
    memory = MemoryStream(protocol="dlms")
    for answer in ANSWERS:
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(answer) - 1)), max_size=6)))
        bounds = [0, *cuts, len(answer)]
        memory.reply_after_write([answer[a:b] for a, b in pairwise(bounds)])
    link = HdlcLink(memory, Address(16), METER, timeouts=FAST)
    assert run_checked(_read_buffer(link)) == VALUE


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
@example(b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e")
@example(b"\x7e\xa0")  # a false start once swallowed the SNRM after it
def test_the_simulated_meter_takes_any_bytes(noise: bytes) -> None:
    far = HdlcServerLink(CosemServer(SimObjects(FakeClock().wall_ms)), METER)
    answer = far.feed(noise)
    assert isinstance(answer, bytes)
    link = HdlcLink(LoopbackStream(far), Address(16), METER, timeouts=FAST)
    run_checked(link.open())  # the meter still serves after the noise


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 12), st.integers(1, 7), st.integers(1, 7))
def test_one_damaged_frame_in_any_window_is_recovered(spoiled_at: int, window_tx: int,
                                                      window_rx: int) -> None:
    clock = FakeClock()
    objects = SimObjects(clock.wall_ms)
    clock.step(12 * CAPTURE_PERIOD_S)
    far = HdlcServerLink(CosemServer(objects), METER, LinkParameters(32, 32, window_tx,
                                                                     window_rx))
    far.app.settings.block_size = 4096
    link = HdlcLink(LoopbackStream(far), Address(16), METER, timeouts=FAST,
                    proposed=LinkParameters(32, 32, 7, 7))

    async def scenario() -> object:
        await link.open()
        association = Association(link, Credentials(Authentication.NONE))
        await association.associate()
        far.faults.spoil_frame = far.faults.frames_sent + spoiled_at
        return await association.get(7, LOAD_PROFILE_OBIS, 2)

    value = run_checked(scenario())
    assert value == VALUE
    spoil_at = far.faults.spoil_frame
    assert spoil_at is not None
    assert link.retries >= 1 or spoil_at >= far.faults.frames_sent  # or the answer was shorter
