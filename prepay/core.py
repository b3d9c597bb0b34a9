"""Pure prepayment core: exact charge arithmetic and the relay decision state machine.

This module must run unchanged on CPython and on MicroPython (a per-meter prepayment module's
microcontroller), so it imports nothing it needs and uses only ints, strings, tuples, lists,
dicts and plain classes. Its one import is optional: the gateway's exception root, so that
`PrepayError` sits under `core.errors.MeterGatewayError` like every other package's base; on
a microcontroller, where there is no `core` package, it derives from `Exception`.
Units (see docs/prepay.md):

* money: integer units of 1/10000 of the currency unit (``MONEY_SCALE``);
* energy/volume: integer milli-units of the register unit (Wh for kWh, litres for m3);
* prices: integer money units per whole register unit (per kWh, per m3);
* power: integer watts; time: integer milliseconds.
"""

MONEY_SCALE = 10000  # money units per currency unit
MILLI = 1000  # register milli-units per register unit
BASIS_POINTS = 10000  # a share of 100 % in basis points

# Documented maxima (docs/prepay.md, "Bounds") for numbers from outside: vouchers, commands,
# config. Plain ints, so a MicroPython module enforces the same limits. They keep every stored
# amount, time and running total far inside SQLite's signed 64-bit INTEGER (about 9.2e18).
MAX_AMOUNT = 10**9 * MONEY_SCALE  # an amount, limit, threshold or emergency credit: 10^9 units
MAX_PRICE = 10**6 * MONEY_SCALE  # a price per register unit or a standing charge per day
MAX_POWER_W = 10**9  # a maximum-power limit (1 GW: no single supply is larger)
MAX_DELAY_S = 31 * 86400  # a max-power trip or retry delay: at most 31 days
MAX_TRIPS = 1000  # max-power trips before the lock-out
# A register value (|milli| stored as the charging mark) and the digits parsed for it: longer
# text is refused before int(), which CPython refuses itself above 4300 digits.
MAX_REGISTER_MILLI = 10**18
MAX_REGISTER_DIGITS = 16  # whole digits of a register value: 10^16 units would exceed the max

MODE_OPERATOR = "operator"
MODE_AUTOMATIC = "automatic"
MODE_MANUAL = "manual"
MODES = (MODE_OPERATOR, MODE_AUTOMATIC, MODE_MANUAL)

RECONNECT_AUTO = "automatic"
RECONNECT_BUTTON = "button"


try:
    from core.errors import MeterGatewayError as _ErrorRoot
except ImportError:  # MicroPython firmware, or this file run alone: no gateway kernel beside it
    _ErrorRoot = Exception  # type: ignore[assignment,misc]


class PrepayError(_ErrorRoot):
    """Base of every error the prepay package raises; the message names the bad thing."""


def parse_milli(text: str) -> int:
    """Exact decimal text ("123.4567") -> milli-units, truncated toward minus infinity.

    Registers are truncated as absolute values (never as deltas), so the sum of deltas between
    truncated readings equals truncated(last) - truncated(first): no drift however many readings.
    """
    s = text.strip()
    neg = s.startswith("-")
    if neg or s.startswith("+"):
        s = s[1:]
    whole, _, frac = s.partition(".")
    digits = whole + frac
    if not digits or any(c not in "0123456789" for c in digits):
        raise PrepayError("not a decimal number: " + repr(text[:40]))
    if len(whole.lstrip("0")) > MAX_REGISTER_DIGITS:
        raise PrepayError("register value out of range: " + repr(text[:40]))
    kept = (frac + "000")[:3]
    value = int(whole or "0") * MILLI + int(kept)
    rest_nonzero = frac[3:].strip("0") != ""
    if neg:
        value = -value - (1 if rest_nonzero else 0)
    if value > MAX_REGISTER_MILLI or value < -MAX_REGISTER_MILLI:
        raise PrepayError("register value out of range: " + repr(text[:40]))
    return value


def charge_for(delta_milli: int, price: int, carry: int) -> tuple:
    """Charge for `delta_milli` at `price` per unit; returns (charge, new_carry).

    Rounding rule: the charge is floored to a whole money unit and the remainder (in 1/1000
    money unit, 0 <= carry < 1000) is carried to the meter's next charge. The sum of all charges
    plus the final carry/1000 therefore always equals sum(delta * price) / 1000 exactly.
    """
    if delta_milli < 0:
        raise PrepayError(f"negative energy delta {delta_milli}")
    if price < 0:
        raise PrepayError(f"negative price {price}")
    if carry < 0 or carry >= MILLI:
        raise PrepayError(f"carry out of range {carry}")
    total = delta_milli * price + carry
    if total // MILLI > MAX_AMOUNT:
        # refused, not stored: beyond this a ledger row would overflow a 64-bit integer
        raise PrepayError(f"charge for {delta_milli} milli-units at {price} above the maximum")
    return total // MILLI, total % MILLI


def split_charge(charge: int, credit: int) -> tuple:
    """Split a charge into (taken_from_credit, added_to_debt): credit never goes below zero."""
    taken = min(charge, max(credit, 0))
    return taken, charge - taken


def split_topup(amount: int, debt: int, emergency: int, share_bp: int) -> tuple:
    """Split a top-up into (emergency_repayment, debt_recovery, to_credit).

    Emergency credit is repaid first and in full (as far as the top-up goes); then
    `share_bp` basis points of what is left recover debt; the rest becomes spendable credit.
    """
    if amount < 0 or amount > MAX_AMOUNT:
        raise PrepayError(f"top-up {amount} outside 0..{MAX_AMOUNT} money units")
    if share_bp < 0 or share_bp > BASIS_POINTS:
        raise PrepayError(f"debt recovery share {share_bp} outside 0..10000 basis points")
    repay = min(amount, max(emergency, 0))
    left = amount - repay
    recover = min(max(debt, 0), left * share_bp // BASIS_POINTS)
    return repay, recover, left - recover


def in_windows(weekday: int, minute: int, windows: list) -> bool:
    """True when (weekday 0=Monday, minute of day) falls in one of `windows`.

    A window is (weekdays, start_minute, end_minute); end <= start means it crosses midnight
    and the part after midnight belongs to the day after a listed weekday.
    """
    for days, start, end in windows:
        if start < end:
            if weekday in days and start <= minute < end:
                return True
        elif (weekday in days and minute >= start) or ((weekday - 1) % 7 in days and minute < end):
            return True
    return False


def new_relay_state() -> dict:
    """The state of a meter's relay machine before anything happened: supply on."""
    return {
        "closed": True,  # commanded relay state; True = supply on
        "cmd_open": False,  # an authorised command holds the relay open
        "credit_open": False,  # opened for exhausted credit (automatic mode)
        "armed": False,  # credit is back; waiting for the on-site button
        "over_since": None,  # ms when power first went over the limit
        "trip_until": None,  # ms until which a max-power trip keeps the relay open
        "trips": 0,  # max-power trips since the last reset
        "last_trip": None,
        "locked": False,  # too many trips: open until an operator command
        "warned_low": False,
        "warned_empty": False,
    }


def default_relay_config() -> dict:
    """Per-meter settings the machine reads; callers override what their config sets."""
    return {
        "mode": MODE_AUTOMATIC,
        "warn_limit": 0,
        "reconnect_threshold": 0,
        "reconnect": RECONNECT_AUTO,
        "max_power_w": 0,  # 0 = no limit
        "trip_after_ms": 60000,
        "retry_delay_ms": 300000,
        "max_trips": 3,
        "trip_reset_ms": 3600000,
    }


class RelayMachine:
    """Decides one meter's relay from credit, mode, friendly hours, power and commands.

    Every method returns a list of events, each a tuple (name, detail); relay switching is
    ("relay_opened", reason) or ("relay_closed", reason). State is a plain dict (persistable).
    """

    def __init__(self, config: dict, state: dict | None = None) -> None:
        self.config = config
        self.state = state if state is not None else new_relay_state()

    def command(self, closed: bool) -> list:
        """An authorised relay command; closing also clears a max-power lock-out."""
        st = self.state
        st["cmd_open"] = not closed
        if closed:
            st["locked"] = False
            st["trips"] = 0
            st["trip_until"] = None
            st["credit_open"] = False
            st["armed"] = False
        return []

    def press_button(self) -> bool:
        """The on-site button was pressed; returns True when it released an armed reconnection."""
        if self.state["armed"]:
            self.state["armed"] = False
            self.state["credit_open"] = False
            return True
        return False

    def evaluate(self, credit: int, friendly: bool, power_w: int | None, now_ms: int) -> list:
        """Re-decide the relay; `power_w` may be None when unknown."""
        cfg = self.config
        st = self.state
        events: list = []
        self._warnings(credit, events)
        mode = cfg["mode"]
        if mode == MODE_MANUAL:
            st["credit_open"] = False
            st["armed"] = False
            return self._apply(st["cmd_open"], "command", "command", events)
        close_reason = self._max_power(power_w, now_ms, events)
        if mode == MODE_AUTOMATIC:
            close_reason = self._credit(credit, friendly, events) or close_reason
        else:
            st["credit_open"] = False
            st["armed"] = False
        open_reason = self._open_reason(now_ms)
        return self._apply(open_reason is not None, open_reason, close_reason, events)

    def _open_reason(self, now_ms: int) -> str | None:
        st = self.state
        if st["cmd_open"]:
            return "command"
        if st["locked"]:
            return "max_power_lockout"
        if st["trip_until"] is not None and now_ms < st["trip_until"]:
            return "max_power"
        if st["credit_open"]:
            return "credit_exhausted"
        return None

    def _apply(
        self, want_open: bool, open_reason: str | None, close_reason: str | None, events: list
    ) -> list:
        st = self.state
        if want_open and st["closed"]:
            st["closed"] = False
            events.append(("relay_opened", open_reason))
        elif not want_open and not st["closed"]:
            st["closed"] = True
            events.append(("relay_closed", close_reason or "conditions_cleared"))
        return events

    def _warnings(self, credit: int, events: list) -> None:
        st = self.state
        if credit <= 0:
            if not st["warned_empty"]:
                st["warned_empty"] = True
                events.append(("credit_exhausted", credit))
        else:
            st["warned_empty"] = False
        if credit < self.config["warn_limit"]:
            if not st["warned_low"] and credit > 0:
                st["warned_low"] = True
                events.append(("low_credit", credit))
        else:
            st["warned_low"] = False

    def _credit(self, credit: int, friendly: bool, events: list) -> str | None:
        cfg = self.config
        st = self.state
        if not st["credit_open"]:
            if credit <= 0 and not friendly:
                st["credit_open"] = True
            return None
        if credit <= 0 or credit < cfg["reconnect_threshold"]:
            st["armed"] = False
            return None
        if cfg["reconnect"] == RECONNECT_BUTTON:
            if not st["armed"]:
                st["armed"] = True
                events.append(("reconnect_armed", credit))
            return None
        st["credit_open"] = False
        return "topup"

    def _max_power(self, power_w: int | None, now_ms: int, events: list) -> str | None:
        cfg = self.config
        st = self.state
        limit = cfg["max_power_w"]
        reason: str | None = None
        if st["trip_until"] is not None and now_ms >= st["trip_until"]:
            st["trip_until"] = None
            reason = "max_power_retry"
        idle = st["trips"] and not st["locked"] and st["trip_until"] is None
        if idle and now_ms - st["last_trip"] >= cfg["trip_reset_ms"]:
            st["trips"] = 0
        if not limit or power_w is None or power_w <= limit or not st["closed"]:
            st["over_since"] = None
            return reason
        if st["over_since"] is None:
            st["over_since"] = now_ms
        if now_ms - st["over_since"] >= cfg["trip_after_ms"]:
            st["over_since"] = None
            st["trips"] += 1
            st["last_trip"] = now_ms
            if st["trips"] >= cfg["max_trips"]:
                st["locked"] = True
                events.append(("max_power_lockout", st["trips"]))
            else:
                st["trip_until"] = now_ms + cfg["retry_delay_ms"]
                events.append(("max_power_trip", st["trips"]))
        return reason
