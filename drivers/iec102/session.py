"""The REE application session over a link master: open with the password, read clock, totals,
profiles, billing closures and events, set the clock, end the session.

Every application request is SEND/CONFIRM then class 2 polls: a command (password, set time,
end session) ends with its activation confirmation (COT 7); a read of the clock with the
requested answer (COT 5); a read of records with its confirmation, the records (COT 5) and an
activation termination (COT 10). A negative confirmation or an error cause refuses the request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from drivers.errors import DeviceRejected, DeviceTimeout, FrameError
from drivers.iec102 import link
from drivers.iec102.asdu import ERROR_CAUSES, Asdu, Cause, cause_name
from drivers.iec102.bodies import asdu_of, body_of
from drivers.iec102.master import LinkMaster
from drivers.iec102.objects import (
    Billing,
    BillingRecords,
    Body,
    Clock,
    Empty,
    Event,
    Events,
    Password,
    TimeRange,
    Totals,
    TotalsRange,
)
from drivers.iec102.timetags import TimeA, TimeB

# type ids of the requests (control direction) and what answers them
C_AC_NA_2: Final = 183
C_FS_NA_2: Final = 187
C_TI_NA_2: Final = 103
C_CS_TA_2: Final = 181
C_CI_NT_2: Final = 122   # absolute totals over a range -> M_IT_TG_2 (8)
C_CI_NU_2: Final = 123   # increments over a range -> M_IT_TK_2 (11)
C_TA_VC_2: Final = 133   # current billing values -> M_TA_VC_2 (135)
C_TA_VM_2: Final = 134   # closed billing periods -> M_TA_VM_2 (136)
C_SP_NB_2: Final = 102   # events over a range -> M_SP_TA_2 (1)
# record addresses (REE)
RECORD_HOURLY: Final = 11
RECORD_QUARTER_HOURLY: Final = 12
RECORD_DAILY: Final = 21
CONTRACT_RECORDS: Final = {1: 134, 2: 135, 3: 136}
EVENT_RECORDS: Final = (52, 53, 54, 55)   # supply, synchronisation, parameters, errors
TOTALS_FIRST: Final = 1
TOTALS_LAST: Final = 8
MAX_TIME_SET_S: Final = 3600   # a clock further off than this is not set remotely


class RequestRefused(DeviceRejected):
    """The meter refused an application request (negative confirmation or an error cause)."""

    def __init__(self, message: str, cause: int) -> None:
        self.cause = cause
        super().__init__(message)


class WrongPassword(RequestRefused):
    """C_AC_NA_2 was confirmed negatively."""


@dataclass(frozen=True, slots=True)
class Reply:
    confirmation: Asdu | None
    records: tuple[Asdu, ...]


class Session:
    """Application requests to one measuring point (meter address) over one link."""

    def __init__(self, master: LinkMaster, meter_address: int, *,
                 max_polls: int = link.MAX_POLLS) -> None:
        self.master = master
        self.meter_address = meter_address
        self.max_polls = max_polls

    async def request(self, type_id: int, cause: int, record: int, body: Body,
                      until: str) -> Reply:
        """Send one request and poll class 2 until `until` ("con", "answer" or "term")."""
        asdu = asdu_of(type_id, cause, self.meter_address, record, body)
        await self.master.send(asdu.to_bytes())
        confirmation: Asdu | None = None
        records: list[Asdu] = []
        for _ in range(self.max_polls):
            raw = await self.master.poll(2)
            if raw is None:
                continue
            answer = self._checked(Asdu.from_bytes(raw), type_id)
            if answer.cause == Cause.ACTIVATION_CON and answer.type_id == type_id:
                confirmation = answer
                if until == "con":
                    return Reply(confirmation, ())
            elif answer.cause == Cause.ACTIVATION_TERM:
                return Reply(confirmation, tuple(records))
            else:
                records.append(answer)
                if until == "answer":
                    return Reply(confirmation, tuple(records))
        raise DeviceTimeout(f"meter {self.meter_address}: no end to request {type_id} after "
                            f"{self.max_polls} polls")

    def _checked(self, answer: Asdu, asked: int) -> Asdu:
        if answer.meter_address != self.meter_address:
            raise FrameError(f"answer for meter address {answer.meter_address}, asked "
                             f"{self.meter_address}")
        if answer.cause in ERROR_CAUSES or answer.negative:
            refused = WrongPassword if asked == C_AC_NA_2 else RequestRefused
            raise refused(f"meter {self.meter_address}: request {asked} refused "
                          f"({cause_name(answer.cause)}"
                          f"{', negative' if answer.negative else ''})", answer.cause)
        return answer

    # ---- the profile's operations ------------------------------------------------------------
    async def open(self, password: int) -> None:
        await self.request(C_AC_NA_2, Cause.ACTIVATION, 0, Password(password), "con")

    async def close(self) -> None:
        await self.request(C_FS_NA_2, Cause.ACTIVATION, 0, Empty(), "con")

    async def read_clock(self) -> TimeB:
        reply = await self.request(C_TI_NA_2, Cause.REQUEST, 0, Empty(), "answer")
        body = body_of(reply.records[0])
        if not isinstance(body, Clock):
            raise FrameError(f"clock read answered with {reply.records[0].name}")
        return body.time

    async def set_clock(self, when: dt.datetime, summer: bool) -> None:
        await self.request(C_CS_TA_2, Cause.ACTIVATION, 0, Clock(TimeB.of(when, summer)), "con")

    async def read_totals(self, record: int, start: TimeA, end: TimeA, *,
                          incremental: bool = False, first: int = TOTALS_FIRST,
                          last: int = TOTALS_LAST) -> list[Totals]:
        """Integrated totals of a record (11 hourly, 12 quarter-hourly, 21 daily) whose periods
        end within start..end: absolute (M_IT_TG_2) or increments (M_IT_TK_2)."""
        type_id = C_CI_NU_2 if incremental else C_CI_NT_2
        reply = await self.request(type_id, Cause.ACTIVATION, record,
                                   TotalsRange(first, last, start, end), "term")
        return [body for body in map(body_of, reply.records) if isinstance(body, Totals)]

    async def read_billing(self, contract: int, start: TimeA | None = None,
                           end: TimeA | None = None) -> list[Billing]:
        """The current period's values (no range) or the periods closed within start..end."""
        record = CONTRACT_RECORDS[contract]
        if start is None or end is None:
            reply = await self.request(C_TA_VC_2, Cause.ACTIVATION, record, Empty(), "term")
        else:
            reply = await self.request(C_TA_VM_2, Cause.ACTIVATION, record,
                                       TimeRange(start, end), "term")
        return [r for body in map(body_of, reply.records) if isinstance(body, BillingRecords)
                for r in body.records]

    async def read_events(self, record: int, start: TimeA, end: TimeA) -> list[Event]:
        reply = await self.request(C_SP_NB_2, Cause.ACTIVATION, record, TimeRange(start, end),
                                   "term")
        return [e for body in map(body_of, reply.records) if isinstance(body, Events)
                for e in body.events]
