"""The pty harness: bytes cross both ways, faults apply once, unplug/replug moves the path."""

import asyncio
import os
from pathlib import Path

import pytest
import serial

from drivers.transport.sim import Direction, Fault, FaultKind, PtyLink

READ_TIMEOUT_S = 1.0  # generous: only bounds a failing test


async def read_exactly(port: serial.Serial, n: int) -> bytes:
    return await asyncio.to_thread(port.read, n)


@pytest.fixture
async def link(tmp_path: Path):
    async with PtyLink(tmp_path / "ttySIM0") as pty:
        yield pty


def open_port(path: str) -> serial.Serial:
    return serial.Serial(path, timeout=READ_TIMEOUT_S)


async def test_bytes_cross_both_ways(link: PtyLink) -> None:
    device, gateway = open_port(link.device_path), open_port(link.gateway_path)
    assert Path(link.gateway_path).is_symlink()
    gateway.write(b"\x01\x04\x00\x00\x00\x02")
    assert await read_exactly(device, 6) == b"\x01\x04\x00\x00\x00\x02"
    device.write(bytes(range(256)))  # raw: no byte is eaten by a line discipline
    assert await read_exactly(gateway, 256) == bytes(range(256))
    device.close(), gateway.close()


@pytest.mark.parametrize(("fault", "sent", "expected"), [
    (Fault(FaultKind.CORRUPT, offset=1), b"abc", bytes([0x61, 0x62 ^ 0xFF, 0x63])),
    (Fault(FaultKind.GARBAGE, data=b"\xff\x00"), b"abc", b"\xff\x00abc"),
    (Fault(FaultKind.TRUNCATE, count=2), b"abcdef", b"abcd"),
    (Fault(FaultKind.DELAY, seconds=0.05), b"abc", b"abc"),
])
async def test_one_shot_faults(link: PtyLink, fault: Fault, sent: bytes, expected: bytes) -> None:
    device, gateway = open_port(link.device_path), open_port(link.gateway_path)
    link.inject(Direction.TO_GATEWAY, fault)
    link.deliver(Direction.TO_GATEWAY, sent)
    assert await read_exactly(gateway, len(expected)) == expected
    link.deliver(Direction.TO_GATEWAY, b"next")  # the fault was used up
    assert await read_exactly(gateway, 4) == b"next"
    device.close(), gateway.close()


async def test_drop_and_filter(link: PtyLink) -> None:
    device = open_port(link.device_path)
    link.inject(Direction.TO_DEVICE, Fault(FaultKind.DROP))
    link.set_filter(Direction.TO_DEVICE, lambda chunk: chunk.upper())
    link.deliver(Direction.TO_DEVICE, b"lost")
    link.deliver(Direction.TO_DEVICE, b"kept")
    assert await read_exactly(device, 4) == b"KEPT"
    device.close()


async def test_unplug_and_replug(link: PtyLink) -> None:
    device, gateway = open_port(link.device_path), open_port(link.gateway_path)
    link.unplug()
    assert not os.path.exists(link.gateway_path) and not link.plugged
    with pytest.raises(serial.SerialException):
        gateway.read(1)  # the old pty hung up
    link.replug()
    assert os.path.exists(link.gateway_path) and link.plugged
    again = open_port(link.gateway_path)
    device.write(b"back")
    assert await read_exactly(again, 4) == b"back"
    device.close(), gateway.close(), again.close()


async def test_bad_checksum_hook_and_silence(link: PtyLink) -> None:
    gateway = open_port(link.gateway_path)
    link.set_checksum_hook(Direction.TO_GATEWAY, lambda frame: frame[:-2] + b"\x00\x00")
    link.inject(Direction.TO_GATEWAY, Fault(FaultKind.BAD_CHECKSUM))
    link.deliver(Direction.TO_GATEWAY, b"abcd")
    assert await read_exactly(gateway, 4) == b"ab\x00\x00"
    link.silence(Direction.TO_GATEWAY)
    link.deliver(Direction.TO_GATEWAY, b"gone")
    link.silence(Direction.TO_GATEWAY, on=False)
    link.deliver(Direction.TO_GATEWAY, b"back")
    assert await read_exactly(gateway, 4) == b"back"  # nothing of "gone" came through
    gateway.close()
