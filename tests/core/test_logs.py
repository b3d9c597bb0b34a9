"""The TRACE level: wire bytes logged with direction, meter and hex only when switched on."""

import logging
from collections.abc import Iterator

import pytest

from core.logs import TRACE, log_bytes, set_trace, trace_enabled, wire_logger


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    seen: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.NOTSET)
    handler.emit = seen.append  # type: ignore[method-assign]
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(TRACE)  # even a root at TRACE must not turn the bytes on
    yield seen
    root.removeHandler(handler)
    root.setLevel(old_level)
    set_trace("testproto", False)


def test_off_by_default(records: list[logging.LogRecord]) -> None:
    logger = wire_logger("testproto")
    assert logger.name == "drivers.testproto.wire"
    assert not trace_enabled("testproto")
    log_bytes(logger, "tx", "shop-12", b"\x01\x04")
    assert records == []


def test_switched_on_per_protocol(records: list[logging.LogRecord]) -> None:
    set_trace("testproto", True)
    log_bytes(wire_logger("testproto"), "rx", "shop-12", b"\x01\x04\xff")
    log_bytes(wire_logger("otherproto"), "rx", "shop-13", b"\x02")
    assert [(r.levelno, r.getMessage(), r.direction, r.meter, r.hex) for r in records] == [
        (TRACE, "wire_bytes", "rx", "shop-12", "0104ff")]  # type: ignore[attr-defined]
    assert logging.getLevelName(TRACE) == "TRACE"
    set_trace("testproto", False)
    log_bytes(wire_logger("testproto"), "rx", "shop-12", b"\x01")
    assert len(records) == 1
