"""Simulator pacing: a read's answer time is its frames at the line's baud plus the turnaround."""

from drivers.modbus.sim import Pace


def test_a_read_takes_its_frames_at_line_speed_plus_the_turnaround() -> None:
    pace = Pace(9600, 0.02)
    # 10 registers: 8-byte request, 25-byte answer, 11 bits a byte
    assert pace.answer_s(10) == 33 * 11 / 9600 + 0.02


def test_the_spec_paces_a_bus_only_when_it_names_a_baudrate() -> None:
    assert Pace.from_spec({"name": "b"}) is None
    assert Pace.from_spec({"baudrate": 19200, "turnaround_ms": 15}) == Pace(19200, 0.015)
    assert Pace.from_spec({"baudrate": 9600}) == Pace(9600, 0.0)
