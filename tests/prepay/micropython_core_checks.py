"""Plain-assert checks of prepay/core.py that run under CPython and the MicroPython unix port.

Run as a script: `micropython tests/prepay/micropython_core_checks.py` (exit status 0 = pass).
No pytest, no CPython-only imports: this is what a prepayment module's firmware would run.
"""

import sys

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _HERE + "/../../prepay")

import core  # noqa: E402  (path set above so MicroPython finds the module without the package)


def _lcg(seed):
    state = [seed]

    def nxt(bound):
        state[0] = (state[0] * 1103515245 + 12345) % 2147483648
        return state[0] % bound

    return nxt


def check_parse_milli():
    assert core.parse_milli("123.4567") == 123456
    assert core.parse_milli("0.001") == 1
    assert core.parse_milli("7") == 7000
    assert core.parse_milli("-1.0001") == -1001
    assert core.parse_milli("-1.000") == -1000
    assert core.parse_milli(".5") == 500
    for bad in ("", "abc", "1.2.3", "-", "1e3"):
        try:
            core.parse_milli(bad)
        except core.PrepayError:
            continue
        raise AssertionError("accepted " + repr(bad))


def check_bounds():
    top = "1" + "0" * 15  # 10^15 units = MAX_REGISTER_MILLI
    assert core.parse_milli(top) == core.MAX_REGISTER_MILLI
    assert core.parse_milli("-" + top) == -core.MAX_REGISTER_MILLI
    assert core.parse_milli("0" * 40 + "1") == 1000  # leading zeros are not digits of value
    for bad in (top + ".001", "-" + top + ".001", "9" * 17, "9" * 5000):
        try:
            core.parse_milli(bad)
        except core.PrepayError:
            continue
        raise AssertionError("accepted " + bad[:20])
    most = core.MAX_AMOUNT * core.MILLI  # delta * price at exactly the charge maximum
    assert core.charge_for(most, 1, 0) == (core.MAX_AMOUNT, 0)
    for bad in ((most + core.MILLI, 1, 0), (core.MAX_REGISTER_MILLI, core.MAX_PRICE, 0)):
        try:
            core.charge_for(bad[0], bad[1], bad[2])
        except core.PrepayError:
            continue
        raise AssertionError("accepted " + repr(bad))
    assert core.split_topup(core.MAX_AMOUNT, 0, 0, 0) == (0, 0, core.MAX_AMOUNT)
    try:
        core.split_topup(core.MAX_AMOUNT + 1, 0, 0, 0)
    except core.PrepayError:
        return
    raise AssertionError("accepted a top-up above the maximum")


def check_charge_exact():
    rnd = _lcg(7)
    carry = 0
    charged = 0
    exact = 0
    for _ in range(20000):
        delta = rnd(50)
        price = 2000 + rnd(3000)
        charge, carry = core.charge_for(delta, price, carry)
        charged += charge
        exact += delta * price
        assert 0 <= carry < core.MILLI
    assert charged * core.MILLI + carry == exact
    for bad in ((-1, 1, 0), (1, -1, 0), (1, 1, 1000), (1, 1, -1)):
        try:
            core.charge_for(bad[0], bad[1], bad[2])
        except core.PrepayError:
            continue
        raise AssertionError("accepted " + repr(bad))


def check_splits():
    assert core.split_charge(100, 30) == (30, 70)
    assert core.split_charge(100, -5) == (0, 100)
    assert core.split_charge(10, 300) == (10, 0)
    assert core.split_topup(1000, 500, 200, 2500) == (200, 200, 600)
    assert core.split_topup(100, 0, 300, 5000) == (100, 0, 0)
    assert core.split_topup(1000, 50, 0, 5000) == (0, 50, 950)
    rnd = _lcg(3)
    for _ in range(2000):
        amount, debt, emerg, share = rnd(10**6), rnd(10**6), rnd(10**5), rnd(10001)
        repay, recover, credit = core.split_topup(amount, debt, emerg, share)
        assert repay + recover + credit == amount
        assert 0 <= repay <= emerg and 0 <= recover <= debt and credit >= 0


def check_windows():
    nights = [((0, 1, 2, 3, 4, 5, 6), 22 * 60, 6 * 60)]
    assert core.in_windows(0, 23 * 60, nights)
    assert core.in_windows(1, 5 * 60, nights)
    assert not core.in_windows(1, 12 * 60, nights)
    weekend = [((5, 6), 0, 24 * 60)]
    assert core.in_windows(6, 10, weekend) and not core.in_windows(0, 10, weekend)
    fri_night = [((4,), 20 * 60, 2 * 60)]
    assert core.in_windows(5, 60, fri_night) and not core.in_windows(4, 60, fri_night)


def _machine(**over):
    cfg = core.default_relay_config()
    cfg.update(over)
    return core.RelayMachine(cfg)


def check_automatic():
    m = _machine(warn_limit=1000, reconnect_threshold=500)
    assert m.evaluate(5000, False, None, 0) == []
    assert m.evaluate(900, False, None, 1) == [("low_credit", 900)]
    assert m.evaluate(800, False, None, 2) == []
    assert m.evaluate(0, True, None, 3) == [("credit_exhausted", 0)]
    assert m.state["closed"]
    assert m.evaluate(-10, False, None, 4) == [("relay_opened", "credit_exhausted")]
    assert m.evaluate(400, False, None, 5) == []
    assert m.evaluate(600, False, None, 6) == [("relay_closed", "topup")]
    assert m.state["closed"]


def check_button_reconnect():
    m = _machine(reconnect="button", reconnect_threshold=100)
    m.evaluate(0, False, None, 0)
    assert not m.state["closed"]
    assert not m.press_button()
    assert m.evaluate(200, False, None, 1) == [("reconnect_armed", 200)]
    assert not m.state["closed"]
    assert m.press_button()
    assert m.evaluate(200, False, None, 2) == [("relay_closed", "conditions_cleared")]


def check_operator_and_manual():
    m = _machine(mode=core.MODE_OPERATOR)
    assert m.evaluate(-100, False, None, 0) == [("credit_exhausted", -100)]
    assert m.state["closed"]
    m.command(False)
    assert m.evaluate(-100, False, None, 1) == [("relay_opened", "command")]
    m.command(True)
    assert m.evaluate(-100, False, None, 2) == [("relay_closed", "conditions_cleared")]
    m = _machine(mode=core.MODE_MANUAL, max_power_w=10)
    m.command(False)
    assert m.evaluate(9999, False, None, 0) == [("relay_opened", "command")]
    m.command(True)
    assert m.evaluate(-9999, False, 50000, 1) == [
        ("credit_exhausted", -9999),
        ("relay_closed", "command"),
    ]
    assert m.evaluate(-9999, False, 50000, 10**9) == []


def check_max_power():
    m = _machine(max_power_w=1000, trip_after_ms=100, retry_delay_ms=1000, max_trips=2)
    assert m.evaluate(10**6, False, 2000, 0) == []
    assert m.evaluate(10**6, False, 2000, 100) == [
        ("max_power_trip", 1),
        ("relay_opened", "max_power"),
    ]
    assert m.evaluate(10**6, False, 0, 500) == []
    assert m.evaluate(10**6, False, 0, 1100) == [("relay_closed", "max_power_retry")]
    m.evaluate(10**6, False, 1500, 1200)
    events = m.evaluate(10**6, False, 1500, 1300)
    assert events == [("max_power_lockout", 2), ("relay_opened", "max_power_lockout")]
    assert m.evaluate(10**6, False, 0, 10**8) == []
    m.command(True)
    assert m.evaluate(10**6, False, 0, 10**8 + 1) == [("relay_closed", "conditions_cleared")]


def check_trip_reset():
    m = _machine(max_power_w=1, trip_after_ms=0, retry_delay_ms=10, max_trips=2, trip_reset_ms=100)
    m.evaluate(10**6, False, 5, 0)
    m.evaluate(10**6, False, 0, 20)
    m.evaluate(10**6, False, 0, 200)
    assert m.state["trips"] == 0
    m.evaluate(10**6, False, 5, 210)
    assert not m.state["locked"] and m.state["trips"] == 1


def check_error_root_without_the_gateway():
    # alone (no gateway kernel beside it) the core's errors are plain Exceptions
    assert core.PrepayError.__mro__[1] is Exception if hasattr(core.PrepayError, "__mro__") \
        else issubclass(core.PrepayError, Exception)
    try:
        core.parse_milli("x")
    except Exception as exc:  # what a firmware without the gateway catches
        assert isinstance(exc, core.PrepayError)
    else:
        raise AssertionError("parse_milli accepted 'x'")


CHECKS = (
    check_error_root_without_the_gateway,
    check_parse_milli,
    check_bounds,
    check_charge_exact,
    check_splits,
    check_windows,
    check_automatic,
    check_button_reconnect,
    check_operator_and_manual,
    check_max_power,
    check_trip_reset,
)


def main():
    for check in CHECKS:
        check()
    sys.stdout.write("core checks passed: " + str(len(CHECKS)) + "\n")


if __name__ == "__main__":
    main()
