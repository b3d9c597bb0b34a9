"""Modbus RTU and TCP responses (the master's own framing: drivers.modbus.rtu / mbap / link,
the fault classifier) and register decoding for every bundled profile, with the CRC (RTU) or
MBAP length (TCP) recomputed after mutation so decoding is reached."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from drivers.errors import DriverError
from drivers.modbus.decode import EncodeError, apply_ratio, decode_register, encode_register
from drivers.modbus.link import rtu_registers, tcp_registers
from drivers.modbus.mbap import mbap_frame_end
from drivers.modbus.plan import ReadPlan, ReadRequest, plan_for
from drivers.modbus.profiles import Profile, load_profiles
from drivers.modbus.rtu import classify_rx, crc16, rtu_frame_end
from drivers.readings import Sample
from tests.fuzz.harness import Target
from tests.fuzz.sinks import check_samples

PROFILES: Final[list[Profile]] = list(load_profiles().values())
SLAVE: Final = 1
# CT / VT ratios as the config allows them (validated there; not from the wire).
RATIOS: Final = (Decimal(1), Decimal(5), Decimal(200), Decimal("0.5"), Decimal(4000))
SEED_VALUES: Final = (Decimal("230.1"), Decimal(0), Decimal("12345.67"), Decimal("-1.5"),
                      Decimal("49.98"), Decimal(1))
FLAG_FIX_CRC: Final = 0x01  # RTU: CRC-16 recomputed; TCP: MBAP length recomputed
FLAG_TCP: Final = 0x02  # the frame is a Modbus TCP (MBAP) response, not RTU
TID: Final = 1


def _words_of(profile: Profile, value: Decimal) -> dict[tuple[int, int], int]:
    """Register address -> word for a meter showing `value` in every quantity."""
    words: dict[tuple[int, int], int] = {}
    for reg in profile.registers:
        try:
            spans_words = encode_register(reg, value, rounding=True)
        except (EncodeError, ArithmeticError):
            continue
        for span, span_words in zip(reg.spans, spans_words, strict=True):
            for offset, word in enumerate(span_words):
                words[(span.function, span.address + offset)] = word
    return words


def _request_words(plan: ReadPlan, words: dict[tuple[int, int], int]) -> list[list[int]]:
    return [[words.get((r.function, a), 0) for a in range(r.address, r.end)]
            for r in plan.requests]


def samples_for(profile: Profile, responses: Sequence[Sequence[int]], ct: Decimal,
                vt: Decimal) -> list[Sample]:
    """What ModbusBus._samples makes of the responses of one read (NaN values left out)."""
    plan = plan_for(profile)
    samples = []
    for reg, slots in zip(profile.registers, plan.slots, strict=True):
        words = [responses[s.request][s.offset:s.offset + s.words] for s in slots]
        value = decode_register(reg, words)
        if value is not None:
            samples.append(Sample(reg.quantity, apply_ratio(value, reg.ratio, ct, vt), reg.unit))
    return samples


# ---- register decoding: [profile, ct, vt] + big-endian words ----------------------------

def _register_seeds() -> list[bytes]:
    seeds = []
    for index, profile in enumerate(PROFILES):
        plan = plan_for(profile)
        for value in SEED_VALUES:
            flat = [w for req in _request_words(plan, _words_of(profile, value)) for w in req]
            seeds.append(bytes([index, 0, 0]) + b"".join(w.to_bytes(2, "big") for w in flat))
    return seeds


def run_registers(data: bytes) -> str:
    profile = PROFILES[data[0] % len(PROFILES)]
    ct, vt = RATIOS[data[1] % len(RATIOS)], RATIOS[data[2] % len(RATIOS)]
    body = data[3:] + bytes(len(data[3:]) % 2)
    words = [int.from_bytes(body[i:i + 2], "big") for i in range(0, len(body), 2)] or [0]
    responses, pos = [], 0
    for req in plan_for(profile).requests:
        responses.append([words[(pos + i) % len(words)] for i in range(req.count)])
        pos += req.count
    return f"samples={min(check_samples(samples_for(profile, responses, ct, vt)), 3)}"


# ---- RTU responses: [profile, request, flags] + frame ------------------------------------

def _rtu_seeds() -> list[bytes]:
    seeds = []
    for index, profile in enumerate(PROFILES):
        plan = plan_for(profile)
        for value in SEED_VALUES[:3]:
            for number, words in enumerate(_request_words(plan, _words_of(profile, value))):
                fn = plan.requests[number].function
                body = bytes([SLAVE, fn, 2 * len(words)]) + b"".join(
                    w.to_bytes(2, "big") for w in words)
                seeds.append(bytes([index, number, FLAG_FIX_CRC]) + body + crc16(body))
                mbap = TID.to_bytes(2, "big") + bytes(2) + len(body).to_bytes(2, "big")
                seeds.append(bytes([index, number, FLAG_FIX_CRC | FLAG_TCP]) + mbap + body)
        seeds.append(bytes([index, 0, FLAG_FIX_CRC, SLAVE, 0x84, 0x02]) + b"\0\0")
    return seeds


def rtu_wire(data: bytes) -> bytes:
    flags, frame = (data[2] if len(data) > 2 else 0), data[3:]
    if flags & FLAG_FIX_CRC and flags & FLAG_TCP and len(frame) >= 6:
        frame = frame[:4] + (len(frame) - 6).to_bytes(2, "big") + frame[6:]
    elif flags & FLAG_FIX_CRC and len(frame) >= 2:
        frame = frame[:-2] + crc16(frame[:-2])
    return frame


def _registers(data: bytes, frame: bytes, req: ReadRequest) -> list[int] | None:
    """The master's reading of the answer: where the message ends (as the stream cuts it), then
    the words or the fault (a DriverError, as ModbusBus counts it); None: a frame not complete."""
    tcp = len(data) > 2 and data[2] & FLAG_TCP
    end = (mbap_frame_end if tcp else rtu_frame_end)(frame)
    if end is None:
        return None
    return (tcp_registers if tcp else rtu_registers)(frame[:end], SLAVE, req, "fuzz")


def run_rtu(data: bytes) -> str:
    profile = PROFILES[data[0] % len(PROFILES)]
    plan = plan_for(profile)
    number = data[1] % len(plan.requests) if len(data) > 1 else 0
    req = plan.requests[number]
    frame = rtu_wire(data)
    fault = classify_rx(frame, SLAVE, req.function)
    try:
        registers = _registers(data, frame, req)
    except DriverError as exc:  # counted by the bus under the error's counter
        return f"{getattr(exc, 'counter', type(exc).__name__)}/{fault.value}"
    if registers is None:
        return f"incomplete/{fault.value}"
    if len(registers) != req.count:
        raise AssertionError(f"{len(registers)} registers passed for {req.count}")
    responses = _request_words(plan, _words_of(profile, SEED_VALUES[0]))
    responses[number] = registers
    check_samples(samples_for(profile, responses, RATIOS[0], RATIOS[0]))
    return "decoded"


TARGETS: Final = (
    Target("modbus_registers", _register_seeds, run_registers, protect=3, weight=1.0),
    Target("modbus_rtu", _rtu_seeds, run_rtu, protect=3, weight=1.0, wire=rtu_wire),
)
