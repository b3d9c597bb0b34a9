"""A simulated REE meter, sans-IO: `SimMeter.exchange(frame bytes) -> answer bytes` (b"" for
silence), with the same framing and ASDU code as the master.

State: integrated totals advancing by quarter hour from `origin` (closed forms, exact ints), a
load-profile buffer (hourly record 11, quarter-hourly record 12) back to `origin`, monthly billing
closures of contract 1 and its current period, a few events, the password. Faults: `silent`,
`bad_checksum` (the next N answers), `need_reset` (NACK until the link is reset).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from drivers import ft12
from drivers.errors import FrameError
from drivers.iec102 import link
from drivers.iec102.asdu import Asdu, Cause
from drivers.iec102.bodies import asdu_of, body_of
from drivers.iec102.objects import (
    Billing,
    BillingRecords,
    Body,
    Clock,
    Energy,
    Event,
    Events,
    Password,
    TimeRange,
    Total,
    Totals,
    TotalsRange,
)
from drivers.iec102.timetags import TimeA, TimeB

QUARTER: Final = dt.timedelta(minutes=15)
BILLING_PER_ASDU: Final = 3
EVENTS_PER_ASDU: Final = 20
PERIOD_MINUTES: Final = {11: 60, 12: 15}
# quarter-hour increments per object address: (modulus, offset): value = offset + q % modulus
_INCREMENT: Final = {1: (7, 1), 2: (1, 0), 3: (3, 0), 4: (1, 0), 5: (1, 0), 6: (5, 0)}
BASE: Final = {1: 100_000, 2: 0, 3: 20_000, 4: 0, 5: 0, 6: 5_000}


def _sum_mod(n: int, modulus: int) -> int:
    """sum(q % modulus for q in range(n)), closed form."""
    whole, rest = divmod(n, modulus)
    return whole * modulus * (modulus - 1) // 2 + rest * (rest - 1) // 2


def absolute(address: int, quarters: int) -> int:
    """The register of `address` after `quarters` quarter hours since the origin."""
    if address not in _INCREMENT:
        return 0
    modulus, offset = _INCREMENT[address]
    if address == 6:   # one kvarh every fifth quarter
        return BASE[6] + (quarters + 4) // 5
    return BASE[address] + offset * quarters + _sum_mod(quarters, modulus)


@dataclass
class SimMeter:
    link_address: int
    meter_address: int
    password: int
    origin: dt.datetime
    now: Callable[[], dt.datetime]
    events: list[Event] = field(default_factory=list)
    silent: bool = False
    bad_checksum: int = 0
    need_reset: bool = True
    clock_offset: dt.timedelta = dt.timedelta()
    _session: bool = False
    _last: tuple[bool, bytes] | None = None
    _queue: deque[Asdu] = field(default_factory=deque)
    received: list[Asdu] = field(default_factory=list)

    # ---- link ------------------------------------------------------------------------------
    def exchange(self, data: bytes) -> bytes:
        try:
            frame = ft12.parse_frame(data, link.ADDRESS_WIDTH)
        except FrameError:
            return b""
        if self.silent or isinstance(frame, ft12.SingleChar) or frame.address != self.link_address:
            return b""
        answer = self._link(frame)
        if self.bad_checksum and answer:
            self.bad_checksum -= 1
            return answer[:-2] + bytes([answer[-2] ^ 0xFF]) + answer[-1:]
        return answer

    def _link(self, frame: ft12.ShortFrame | ft12.ControlFrame | ft12.LongFrame) -> bytes:
        control = link.Control.of(frame.control)
        if control.function == link.Primary.RESET_REMOTE_LINK:
            self.need_reset, self._last = False, None
            self._queue.clear()
            return self._answer(link.Ack())
        if control.function == link.Primary.REQUEST_STATUS:
            return self._answer(link.LinkStatus())
        if self.need_reset or not control.bit4:
            return self._answer(link.Nack())
        if self._last is not None and self._last[0] == control.bit5:
            return self._last[1]     # the master repeated: our answer was lost
        answer = self._function(control.function, frame)
        self._last = (control.bit5, answer)
        return answer

    def _function(self, function: int, frame: ft12.Frame) -> bytes:
        if function == link.Primary.SEND_CONFIRM and isinstance(frame, ft12.LongFrame):
            try:
                self._application(Asdu.from_bytes(bytes([frame.ci]) + frame.data))
            except FrameError:
                return self._answer(link.Nack())
            return self._answer(link.Ack())
        if function in (link.Primary.REQUEST_CLASS_1, link.Primary.REQUEST_CLASS_2):
            if function == link.Primary.REQUEST_CLASS_2 and self._queue:
                return self._answer(link.UserData(self._queue.popleft().to_bytes()))
            return self._answer(link.NoData())
        return self._answer(link.Nack())

    def _answer(self, answer: link.Answer) -> bytes:
        return link.build_answer(answer, self.link_address)

    # ---- application -----------------------------------------------------------------------
    def _reply(self, type_id: int, cause: int, record: int, body: Body,
               negative: bool = False) -> None:
        self._queue.append(asdu_of(type_id, cause, self.meter_address, record, body, negative))

    def _echo(self, asdu: Asdu, cause: int, negative: bool = False) -> None:
        self._queue.append(Asdu(asdu.type_id, cause, self.meter_address, asdu.record_address,
                                asdu.objects, asdu.count, negative=negative))

    def _application(self, asdu: Asdu) -> None:
        self.received.append(asdu)
        if asdu.meter_address != self.meter_address:
            self._echo(asdu, Cause.UNKNOWN_ADDRESS)
            return
        try:
            body = body_of(asdu)
        except FrameError:
            self._echo(asdu, Cause.UNKNOWN_TYPE)
            return
        if asdu.type_id == 183:
            self._session = isinstance(body, Password) and body.key == self.password
            self._echo(asdu, Cause.ACTIVATION_CON, negative=not self._session)
        elif not self._session:
            self._echo(asdu, Cause.ACTIVATION_CON, negative=True)
        else:
            self._in_session(asdu, body)

    def _in_session(self, asdu: Asdu, body: Body) -> None:
        handler = {187: self._end, 103: self._clock, 181: self._set_clock, 122: self._totals,
                   123: self._totals, 133: self._billing, 134: self._billing,
                   102: self._events}.get(asdu.type_id)
        if handler is None:
            self._echo(asdu, Cause.UNKNOWN_TYPE)
            return
        handler(asdu, body)

    def meter_time(self) -> dt.datetime:
        return self.now() + self.clock_offset

    def _end(self, asdu: Asdu, body: Body) -> None:
        self._session = False
        self._echo(asdu, Cause.ACTIVATION_CON)

    def _clock(self, asdu: Asdu, body: Body) -> None:
        self._reply(72, Cause.REQUEST, 0, Clock(TimeB.of(self.meter_time())))

    def _set_clock(self, asdu: Asdu, body: Body) -> None:
        if isinstance(body, Clock):
            self.clock_offset = body.time.wall() - self.now()
        self._echo(asdu, Cause.ACTIVATION_CON)

    def _totals(self, asdu: Asdu, body: Body) -> None:
        minutes = PERIOD_MINUTES.get(asdu.record_address)
        if minutes is None or not isinstance(body, TotalsRange):
            self._echo(asdu, Cause.UNKNOWN_RECORD)
            return
        ends = self._period_ends(body.start.wall(), body.end.wall(), minutes)
        if not ends:
            self._echo(asdu, Cause.NO_RECORD)
            return
        self._echo(asdu, Cause.ACTIVATION_CON)
        for end in ends:
            self._reply(11 if asdu.type_id == 123 else 8, Cause.REQUEST, asdu.record_address,
                        self._totals_at(end, minutes, asdu.type_id == 123, body))
        self._echo(asdu, Cause.ACTIVATION_TERM)

    def _period_ends(self, start: dt.datetime, end: dt.datetime,
                     minutes: int) -> list[dt.datetime]:
        """Period ends within start..end that the buffer holds (origin < t <= now)."""
        step = dt.timedelta(minutes=minutes)
        first = self.origin + step * max(1, -(-(start - self.origin) // step))
        last = min(end, self.meter_time())
        ends = []
        while first <= last:
            ends.append(first)
            first += step
        return ends

    def _totals_at(self, end: dt.datetime, minutes: int, incremental: bool,
                   asked: TotalsRange) -> Totals:
        quarters = (end - self.origin) // QUARTER
        back = minutes // 15
        totals = []
        for address in range(asked.first, asked.last + 1):
            value = absolute(address, quarters)
            if incremental:
                value -= absolute(address, quarters - back)
            totals.append(Total(address, value, 0x80 if address > 6 else 0))
        return Totals(tuple(totals), TimeA.of(end))

    def _billing(self, asdu: Asdu, body: Body) -> None:
        if asdu.record_address != 134:
            self._echo(asdu, Cause.UNKNOWN_RECORD)
            return
        if isinstance(body, TimeRange):
            periods = [p for p in self._months() if body.start.wall() <= p[1] <= body.end.wall()]
            type_id = 136
        else:
            periods = [(self._month_start(self.meter_time()), self.meter_time())]
            type_id = 135
        self._echo(asdu, Cause.ACTIVATION_CON)
        records = [r for start, end in periods for r in self._closure(start, end)]
        for at in range(0, len(records), BILLING_PER_ASDU):
            self._reply(type_id, Cause.REQUEST, 134,
                        BillingRecords(tuple(records[at:at + BILLING_PER_ASDU])))
        self._echo(asdu, Cause.ACTIVATION_TERM)

    @staticmethod
    def _month_start(when: dt.datetime) -> dt.datetime:
        return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)

    def _months(self) -> list[tuple[dt.datetime, dt.datetime]]:
        """The closed months since the origin: (start, end) at month boundaries."""
        months, start = [], max(self.origin, self._month_start(self.origin))
        current = self._month_start(self.meter_time())
        while start < current:
            end = self._month_start(start + dt.timedelta(days=32))
            months.append((start, end))
            start = end
        return months

    def _closure(self, start: dt.datetime, end: dt.datetime) -> list[Billing]:
        """Address 20 (all periods), 21 and 22 (tariff periods 1 and 2: a third in P2)."""
        q_start = max(0, (start - self.origin) // QUARTER)
        q_end = (end - self.origin) // QUARTER

        def energy(address: int, share: Callable[[int], int]) -> Energy:
            return Energy(share(absolute(address, q_end)),
                          share(absolute(address, q_end) - absolute(address, q_start)), 0)

        records = []
        for address, share in ((20, lambda v: v), (21, lambda v: v - v // 3),
                               (22, lambda v: v // 3)):
            records.append(Billing(
                address, energy(1, share), energy(3, share), energy(6, share), (0, 0x80),
                (0, 0x80), max_demand=42 if address != 22 else 17,
                max_demand_time=TimeA.of(start + dt.timedelta(days=1, hours=9, minutes=15)),
                max_demand_quality=0, excess=0, excess_quality=0,
                period_start=TimeA.of(start), period_end=TimeA.of(end)))
        return records

    def _events(self, asdu: Asdu, body: Body) -> None:
        if not isinstance(body, TimeRange):
            self._echo(asdu, Cause.UNKNOWN_TYPE)
            return
        chosen = [e for e in self.events
                  if body.start.wall() <= e.time.wall() <= body.end.wall()]
        self._echo(asdu, Cause.ACTIVATION_CON)
        for at in range(0, len(chosen), EVENTS_PER_ASDU):
            self._reply(1, Cause.REQUEST, asdu.record_address,
                        Events(tuple(chosen[at:at + EVENTS_PER_ASDU])))
        self._echo(asdu, Cause.ACTIVATION_TERM)


def default_events(origin: dt.datetime) -> list[Event]:
    """A power failure and its end, a restart, a time change (REE groups 3, 1, 7)."""
    def at(hours: int) -> TimeB:
        return TimeB.of(origin + dt.timedelta(hours=hours, seconds=7))
    return [Event(3, 1, True, at(5)), Event(3, 1, False, at(6)), Event(1, 2, False, at(6)),
            Event(7, 9, False, at(30))]
