"""LogRing: structured records become LogLines with increasing seq, bounded in size."""

from __future__ import annotations

import logging

from gateway.console.logring import LogRing


def test_records_become_lines_with_meter_and_fields() -> None:
    ring = LogRing(size=3)
    logger = logging.getLogger("test.logring")
    logger.addHandler(ring)
    logger.setLevel(logging.INFO)
    try:
        logger.debug("not_kept")
        logger.warning("meter_timeout", extra={"meter": "shop-12", "attempt": 2})
        for n in range(4):
            logger.info("tick", extra={"n": n})
    finally:
        logger.removeHandler(ring)
    last = ring.lines(None, 10)
    assert [line.seq for line in last] == [3, 4, 5]  # bounded: the oldest fell out
    assert last[-1].fields == "n=3" and last[-1].level == "info"
    assert ring.lines(4, 10)[0].seq == 5
    assert ring.lines(5, 10) == []


def test_meter_is_its_own_column() -> None:
    ring = LogRing()
    record = logging.LogRecord("x", logging.WARNING, "f", 1, "meter_timeout", None, None)
    record.meter = "shop-12"
    record.attempt = 2
    ring.emit(record)
    (line,) = ring.lines(None, 5)
    assert (line.event, line.meter, line.fields) == ("meter_timeout", "shop-12", "attempt=2")
