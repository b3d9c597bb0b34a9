"""The console commands: one short handler each, with usage, help text and minimum role.

A command that runs one operation takes its role and summary from that operation's declaration
(`gateway.console.api.OPERATIONS`), so the two cannot disagree. What differs by protocol (what a
scan does) comes from the protocol plugins, so the console names none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from core.errors import Refused
from core.money import NO_CURRENCY, Money
from gateway.console import format as fmt
from gateway.console.api import OPERATIONS, CreditInfo, LogLine, Role
from gateway.console.commands_analytics import cmd_alarms, cmd_balance, cmd_intervals
from gateway.console.context import Context, UsageError
from gateway.wiring.protocols import plugins

SCAN_DEFAULT_S = 10  # long enough to hear most meters that send on their own (every 8-16 s)
SCAN_MAX_S = 300  # a longer scan blocks the bus for polling; do it in steps instead
LOG_DEFAULT_LINES = 20
LOG_MAX_LINES = 500
LOG_FOLLOW_POLL_S = 0.5  # how often `log -f` asks for new lines
TOPUP_MAX = Money.parse("100000", NO_CURRENCY)  # larger amounts are typos, not top-ups

Handler = Callable[[Context, list[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str
    summary: str
    details: str
    role: Role
    handler: Handler
    # per argument position: "meter", "bus", "command" or space-separated literal words
    completes: tuple[str, ...] = ()
    # more paragraphs for `help NAME`, asked for when shown (the plugins' own words)
    more_details: Callable[[], list[str]] | None = None

    def help_paragraphs(self) -> list[str]:
        """What `help NAME` shows below the usage and summary, one paragraph each."""
        more = self.more_details() if self.more_details is not None else []
        return [p for p in (self.details, *more) if p]


def _op(name: str, usage: str, op: str, details: str, handler: Handler,
        completes: tuple[str, ...] = (), *, more: str = "",
        more_details: Callable[[], list[str]] | None = None) -> Command:
    """A command that runs the operation `op`: its role and summary are the operation's."""
    declared = OPERATIONS[op]
    return Command(name, usage, declared.help + more, details, declared.role, handler, completes,
                   more_details)


def _scan_help() -> list[str]:
    """One line per protocol that can scan, in the plugin's words (read when shown)."""
    return [f"{p.name} buses: {p.scan.help}" for p in plugins() if p.scan is not None]


def _one_meter(ctx: Context, args: list[str]) -> str:
    if len(args) != 1:
        raise UsageError("give exactly one meter id")
    return args[0]


async def cmd_status(ctx: Context, args: list[str]) -> None:
    if args:
        raise UsageError("status takes no arguments")
    st = await ctx.api.status()
    limit = f" of {fmt.size(st.storage_limit_bytes)}" if st.storage_limit_bytes else ""
    ctx.say(f"Gateway     {st.gateway_id}  (version {st.version})")
    ctx.say(f"Uptime      {fmt.duration(st.uptime_s)}")
    ctx.say(f"Clock       {fmt.when(st.clock)}")
    ctx.say(f"Storage     {fmt.size(st.storage_used_bytes)} used{limit}")
    ctx.say(f"Uplink      {st.uplink_state}, backlog {st.uplink_backlog} records")
    if st.buses:
        rows = [
            [b.bus, f"{b.frames_ok} frames", f"{b.timeouts} x", f"{b.crc_errors} x",
             f"{b.other_errors} x"]
            for b in st.buses
        ]
        ctx.say(fmt.table(["Bus", "OK", "Timeouts", "CRC errors", "Other errors"], rows))


async def cmd_meters(ctx: Context, args: list[str]) -> None:
    if args:
        raise UsageError("meters takes no arguments")
    rows = await ctx.api.meters()
    ctx.meter_ids = [r.meter_id for r in rows]
    if not rows:
        ctx.say("No meters configured. Add [[meter]] tables to the config, then restart.")
        return
    table_rows = [
        [r.meter_id, r.protocol, r.bus, fmt.when(r.last_reading), r.last_error or "-",
         fmt.money(r.credit, r.currency)]
        for r in rows
    ]
    ctx.say(fmt.table(["Meter", "Protocol", "Bus", "Last reading", "Last error", "Credit"],
                      table_rows))


async def cmd_read(ctx: Context, args: list[str]) -> None:
    meter = _one_meter(ctx, args)
    ctx.say(f"Reading {meter} ...")
    reading = await ctx.api.read_meter(meter)
    ctx.say(f"{reading.meter_id} at {fmt.when(reading.read_at)}")
    rows = [[q.quantity, str(q.value), q.unit or "-"] for q in reading.quantities]
    ctx.say(fmt.table(["Quantity", "Value", "Unit"], rows))


async def cmd_scan(ctx: Context, args: list[str]) -> None:
    if not 1 <= len(args) <= 2:
        raise UsageError("give a bus name and optionally the seconds to scan")
    seconds = SCAN_DEFAULT_S
    if len(args) == 2:
        if not args[1].isdigit() or not 1 <= int(args[1]) <= SCAN_MAX_S:
            raise UsageError(f"seconds must be a whole number from 1 to {SCAN_MAX_S}")
        seconds = int(args[1])
    ctx.say(f"Scanning {args[0]} for {seconds} s ...")
    hits = await ctx.api.scan_bus(args[0], seconds)
    unknown = [h for h in hits if h.known_meter is None]
    ctx.say(f"Found {len(hits)} devices, {len(unknown)} not in the config.")
    if hits:
        rows = [[h.address, h.known_meter or "UNKNOWN", h.detail] for h in hits]
        ctx.say(fmt.table(["Address", "Meter", "Detail"], rows))


async def cmd_relay(ctx: Context, args: list[str]) -> None:
    if len(args) != 2 or args[1] not in ("on", "off"):
        raise UsageError("give a meter id and on or off")
    meter, closed = args[0], args[1] == "on"
    verb = "CLOSE (supply ON)" if closed else "OPEN (supply OFF)"
    if not await ctx.confirm(f"{verb} the relay of {meter}?"):
        return
    state = await ctx.audited("relay", args, lambda: ctx.api.set_relay(meter, closed))
    now = "closed, supply on" if state.closed else "open, supply off"
    ctx.say(f"Relay of {state.meter_id} is {now} since {fmt.when(state.changed_at)}.")


def _say_credit(ctx: Context, info: CreditInfo) -> None:
    relay = {True: "closed (supply on)", False: "open (supply off)", None: "unknown"}
    ctx.say(f"Meter       {info.meter_id}")
    ctx.say(f"Balance     {fmt.money(info.balance, info.currency)}")
    state = "ACTIVE" if info.emergency_active else "not active"
    ctx.say(f"Emergency   {state}, {fmt.money(info.emergency_available, info.currency)} available")
    ctx.say(f"Relay       {relay[info.relay_closed]}")


async def cmd_credit(ctx: Context, args: list[str]) -> None:
    _say_credit(ctx, await ctx.api.credit(_one_meter(ctx, args)))


def _topup_amount(text: str) -> Money:
    """A top-up as typed: plain decimal text (`Money.parse`: the ledger's scale and bounds),
    above 0, at most TOPUP_MAX, whole cents. The currency is the gateway's, not the client's."""
    try:
        amount = Money.parse(text, NO_CURRENCY)
    except Refused:
        raise UsageError(f"amount {text[:40]!r} is not a number like 25.00") from None
    whole_cents = Decimal(amount.text()) == amount.decimal()  # text() rounds to cents
    if not (Money.zero(NO_CURRENCY) < amount <= TOPUP_MAX and whole_cents):
        raise UsageError(f"amount must be above 0 and at most {TOPUP_MAX.text()}, cents at most")
    return amount


async def cmd_topup(ctx: Context, args: list[str]) -> None:
    if len(args) not in (2, 3):
        raise UsageError("give a meter id, an amount and optionally a reference")
    amount = _topup_amount(args[1])
    # each top-up needs its own reference (a repeated one is refused as a replay)
    reference = args[2] if len(args) == 3 else \
        f"console-{ctx.user}-{datetime.now(UTC):%Y%m%dT%H%M%S.%f}"
    if not await ctx.confirm(f"Add {amount.text()} to the credit of {args[0]}?"):
        return
    cents = Decimal(amount.text())  # exact: whole cents, as the service side takes them
    info = await ctx.audited("topup", args, lambda: ctx.api.topup(args[0], cents, reference))
    _say_credit(ctx, info)


async def cmd_emergency(ctx: Context, args: list[str]) -> None:
    meter = _one_meter(ctx, args)
    if not await ctx.confirm(f"Grant emergency credit to {meter}?"):
        return
    _say_credit(ctx, await ctx.audited("emergency", args, lambda: ctx.api.emergency(meter)))


def _say_log(ctx: Context, lines: list[LogLine]) -> None:
    for line in lines:
        who = f" [{line.meter}]" if line.meter else ""
        text = f"{fmt.when(line.ts)} {line.level[:5]:5} {line.event}{who} {line.fields}"
        ctx.say(text[: fmt.WIDTH])


async def cmd_log(ctx: Context, args: list[str]) -> None:
    if args[:1] == ["trace"]:
        await _log_trace(ctx, args[1:])
        return
    follow = "-f" in args
    rest = [a for a in args if a != "-f"]
    if len(rest) > 1 or (rest and not rest[0].isdigit()):
        raise UsageError("log [-f] [LINES]")
    count = min(int(rest[0]), LOG_MAX_LINES) if rest else LOG_DEFAULT_LINES
    lines = await ctx.api.log_lines(None, count)
    _say_log(ctx, lines)
    if not follow:
        return
    ctx.say("-- following; press Ctrl-C to stop --")
    last = lines[-1].seq if lines else 0
    while not await ctx.term.interrupted(LOG_FOLLOW_POLL_S):
        new = await ctx.api.log_lines(last, LOG_MAX_LINES)
        _say_log(ctx, new)
        if new:
            last = new[-1].seq


async def _log_trace(ctx: Context, args: list[str]) -> None:
    # `log` is for viewers; switching what the service logs is not
    ctx.require(OPERATIONS["log_trace"].role, "log trace")
    if len(args) != 2 or args[1] not in ("on", "off"):
        raise UsageError("give a protocol (as 'meters' shows it) and on or off")
    traced = await ctx.audited("log trace", args,
                               lambda: ctx.api.log_trace(args[0], args[1] == "on"))
    ctx.say(f"Wire bytes at TRACE: {', '.join(traced) or 'none'}")


async def cmd_config(ctx: Context, args: list[str]) -> None:
    if args == ["show"]:
        entries = await ctx.api.config_show()
        ctx.say(fmt.table(["Key", "Value"], [[e.key, e.value] for e in entries]))
    elif args == ["check"]:
        problems = await ctx.api.config_check()
        for p in problems:
            ctx.say(fmt.wrap(f"{p.key}: {p.message}"))
        ctx.say("Config OK." if not problems else f"{len(problems)} problems; fix, then check.")
    elif len(args) >= 3 and args[0] == "set":
        ctx.require(OPERATIONS["config_set"].role, "config set")
        key, value = args[1], " ".join(args[2:])  # a text value may hold spaces
        entry = await ctx.audited("config set", [key, value],
                                  lambda: ctx.api.config_set(key, value))
        ctx.say(f"Saved {entry.key} = {entry.value}. Type 'restart' to apply it.")
    else:
        raise UsageError("config show | config check | config set KEY VALUE")


async def cmd_keys(ctx: Context, args: list[str]) -> None:
    if args != ["show"]:
        raise UsageError("keys show")
    keys = await ctx.api.keys_show()
    ctx.say(fmt.table(["Key id", "Purpose", "Meter"], [[k.key_id, k.purpose, k.meter or "-"]
                                                       for k in keys]))


async def cmd_uplink(ctx: Context, args: list[str]) -> None:
    if args != ["flush"]:
        raise UsageError("uplink flush")
    result = await ctx.audited("uplink flush", [], ctx.api.uplink_flush)
    ctx.say(f"Sent {result.sent} records; {result.remaining} records still waiting.")


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not a time like 2026-11-23T17:08:00Z") from None
    if when.tzinfo is None:
        raise UsageError("add the zone: end the time with Z (UTC) or +01:00")
    return when.astimezone(UTC)


async def cmd_restart(ctx: Context, args: list[str]) -> None:
    if args:
        raise UsageError("restart")
    if not await ctx.confirm("Restart the gateway service? Meters are not read for a few "
                             "seconds; relays keep their state."):
        ctx.say("Not restarted.")
        return
    ctx.say(await ctx.audited("restart", [], ctx.api.restart))


async def cmd_time(ctx: Context, args: list[str]) -> None:
    if len(args) != 2 or args[0] != "set":
        raise UsageError("time set 2026-11-23T17:08:00Z")
    when = _parse_time(args[1])
    now = await ctx.audited("time set", args[1:], lambda: ctx.api.set_time(when))
    ctx.say(f"Clock set: {fmt.when(now)}")


def _parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a date like 2026-11-01") from None


async def cmd_export(ctx: Context, args: list[str]) -> None:
    opts = dict(zip(args[::2], args[1::2], strict=False))
    if len(args) % 2 or "--to" not in opts or set(opts) - {"--to", "--from", "--until"}:
        raise UsageError("export --to DIR [--from YYYY-MM-DD] [--until YYYY-MM-DD]")
    today = datetime.now(UTC).date()
    start = _parse_date(opts["--from"], "--from") if "--from" in opts else today.replace(day=1)
    end = _parse_date(opts["--until"], "--until") if "--until" in opts else today
    if end < start:
        raise UsageError("--until is before --from")
    ctx.say(f"Exporting {start} .. {end} to {opts['--to']} ...")
    res = await ctx.audited("export", args, lambda: ctx.api.export(opts["--to"], start, end))
    ctx.say(f"Wrote {res.readings} readings, {res.events} events, {res.ledger_rows} ledger rows:")
    for name in res.files:
        ctx.say(f"  {name}")
    ctx.say("Unmount the stick before pulling it out.")


async def cmd_whoami(ctx: Context, args: list[str]) -> None:
    ctx.say(f"{ctx.user} ({ctx.role.name.lower()})")


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in [
        _op("status", "status", "status", "Shows what works and what does not at a glance. Bus"
            " counters count since the service started.", cmd_status),
        _op("meters", "meters", "meters", "One line per configured meter. 'never' means no"
            " reading since start: check wiring, address and baud rate, then try 'read METER'.",
            cmd_meters),
        _op("read", "read METER", "read_meter", "Reads the meter outside the schedule and prints"
            " all quantities with units. The reading is stored like a scheduled one.", cmd_read,
            ("meter",)),
        _op("scan", "scan BUS [SECONDS]", "scan_bus", "What a scan does depends on the"
            " protocol of the bus (below). Devices not in the config are listed as UNKNOWN.",
            cmd_scan, ("bus",), more=f" (default {SCAN_DEFAULT_S} s)", more_details=_scan_help),
        _op("relay", "relay METER on|off", "set_relay", "on closes the relay (supply on), off"
            " opens it (supply off). Audited.", cmd_relay, ("meter", "on off")),
        _op("credit", "credit METER", "credit", "Only for prepaid meters.", cmd_credit,
            ("meter",)),
        _op("topup", "topup METER AMOUNT [REFERENCE]", "topup", "AMOUNT in the site currency,"
            " at most 2 decimals, e.g. 25.00. Audited and sent up with the next batch.",
            cmd_topup, ("meter",)),
        _op("emergency", "emergency METER", "emergency", "Audited.", cmd_emergency, ("meter",)),
        _op("log", "log [-f] [LINES] | log trace PROTOCOL on|off", "log_lines",
            f"Shows the last {LOG_DEFAULT_LINES} lines (up to {LOG_MAX_LINES}). With -f new"
            " lines keep coming until you press Ctrl-C. 'log trace PROTOCOL on' (technician;"
            " PROTOCOL as 'meters' shows it) logs every byte the gateway sends and receives"
            " on that protocol's buses, with the meter, until 'off' or a restart; [log] trace"
            " in the config keeps it on."
            " Audited.", cmd_log, ("-f trace",)),
        # three operations with their own roles: show and check are for viewers, set is not
        Command("config", "config show|check|set KEY VALUE", "show, check or change config",
                "set needs the admin role. Type VALUE as you would write it (debug, 9600, yes,"
                " 3.00): the key's type says what it is; quotes are optional. KEY is dotted:"
                " log.level, meter[0].address, bus[1].rs485.enabled; a missing section is"
                " added. The change is validated, written atomically and applies after"
                " 'restart'. Audited.", OPERATIONS["config_show"].role, cmd_config,
                ("show check set",)),
        _op("restart", "restart", "restart", "Stops cleanly and starts again, e.g. to apply"
            " 'config set'. Relays keep their state. Audited.", cmd_restart),
        _op("keys", "keys show", "keys_show", "Shows which keys are installed and what they are"
            " for.", cmd_keys, ("show",)),
        _op("uplink", "uplink flush", "uplink_flush", "Tries to send every waiting record now."
            " Audited.", cmd_uplink, ("flush",)),
        _op("time", "time set YYYY-MM-DDTHH:MM:SSZ", "set_time", "For gateways with no network"
            " time. Audited.", cmd_time, ("set",)),
        _op("export", "export --to DIR [--from DATE] [--until DATE]", "export", "DIR is usually"
            " the USB stick (e.g. /media/usb0). The period defaults to this month. Audited.",
            cmd_export, ("--to",)),
        _op("intervals", "intervals METER [YYYY-MM-DD]", "intervals", "The day is the site's"
            " local day, today by default. Quality: measured, interpolated (Gap s: the gap the"
            " value was drawn across) or missing. Flags name the validation rules that failed.",
            cmd_intervals, ("meter",)),
        _op("balance", "balance [YYYY-MM-DD]", "balance", "Loss = parent - sum(children) per"
            " node of [analytics.balance]; incomplete when a member misses an interval.",
            cmd_balance),
        _op("alarms", "alarms", "alarms", "ACTIVE ones first, then the recent raises and clears,"
            " meter-silent and tamper events included.", cmd_alarms),
        Command("whoami", "whoami", "show your account and role", "", Role.VIEWER,
                cmd_whoami),
    ]
}
