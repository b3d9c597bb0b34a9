"""4G modem supervision through ModemManager (`mmcli -J`): link state, stuck detection, resets.

A modem is "stuck" when it is the uplink and its bearer has received no bytes for
`ModemPolicy.stuck_after_s` (modems hang while still claiming "connected"). Recovery escalates:
ModemManager reset first, then a power cycle through the board's modem power line when the
profile has one, with a doubling, capped wait between attempts. When the uplink is Ethernet or
Wi-Fi the modem is never touched: it may be a deliberate backup that sits idle.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from board.errors import BoardError

LOGGER = logging.getLogger(__name__)

MMCLI_TIMEOUT_S = 20.0  # mmcli waits on D-Bus; a reset call can take ~10 s on a slow modem
DEFAULT_STUCK_AFTER_S = 600  # uplink traffic flows every few minutes: 10 min of silence = stuck
DEFAULT_RESET_WAIT_S = 120  # a reset modem needs ~1-2 min to re-enumerate, register and connect
MAX_RESET_WAIT_S = 3600  # never wait more than an hour between recovery attempts
MAX_INDEX_DIGITS = 9  # ModemManager numbers its objects from 0; no real index is this long
DEFAULT_MM_RESETS_BEFORE_POWER = 2  # soft resets first: a power cut is harder on the modem
ROUTE_FILE = Path("/proc/net/route")
CELLULAR_PREFIXES = ("wwan", "ppp", "wwp", "usb", "rmnet")
ETHERNET_PREFIXES = ("eth", "en")
WIFI_PREFIXES = ("wlan", "wl")


class ModemError(BoardError):
    """mmcli failed or printed something we cannot read; the message names command and key."""


class Action(enum.Enum):
    NONE = "none"
    MM_RESET = "mm_reset"
    POWER_CYCLE = "power_cycle"


@dataclass(frozen=True, slots=True)
class ModemStatus:
    index: int
    state: str  # ModemManager state: failed, disabled, registered, connected, ...
    failed_reason: str | None
    power_state: str | None
    access_technologies: tuple[str, ...]
    signal_quality: int | None  # percent
    registration: str | None  # 3GPP: home, roaming, searching, denied, ...
    operator: str | None
    bearers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BearerStatus:
    connected: bool
    interface: str | None
    bytes_rx: int | None
    bytes_tx: int | None


# -- parsing mmcli -J output -----------------------------------------------------------------


def _load(text: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ModemError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ModemError(f"{source}: top level is not an object")
    return doc


def _get(doc: dict[str, Any], path: str, source: str, kind: type = str) -> Any:
    node: Any = doc
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ModemError(f"{source}: missing key {path}")
        node = node[key]
    if not isinstance(node, kind):
        raise ModemError(f"{source}: key {path} is not a {kind.__name__}")
    return node


def _opt(value: str) -> str | None:
    return None if value in ("--", "") else value


def _int_or_none(value: str, source: str, key: str) -> int | None:
    if _opt(value) is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ModemError(f"{source}: key {key} is not an integer: {value!r}") from None


def path_index(dbus_path: str, source: str) -> int:
    """The number at the end of a ModemManager object path (.../Modem/3 -> 3)."""
    tail = dbus_path.rsplit("/", 1)[-1]
    # ASCII digits only (str.isdigit() takes '²'), and short: int() refuses 4300+ digit strings
    if not (tail.isascii() and tail.isdigit()) or len(tail) > MAX_INDEX_DIGITS:
        raise ModemError(f"{source}: object path {dbus_path[:80]!r} does not end in a number")
    return int(tail)


def parse_modem_list(text: str, source: str = "mmcli -L -J") -> list[int]:
    doc = _load(text, source)
    paths = _get(doc, "modem-list", source, list)
    return [path_index(str(p), source) for p in paths]


def parse_modem(text: str, source: str = "mmcli -m -J") -> ModemStatus:
    doc = _load(text, source)
    generic = _get(doc, "modem.generic", source, dict)
    signal = generic.get("signal-quality", {})
    gpp = doc["modem"].get("3gpp") or {}
    if not isinstance(signal, dict) or not isinstance(gpp, dict):
        raise ModemError(f"{source}: signal-quality and 3gpp must be objects")
    return ModemStatus(
        index=path_index(_get(doc, "modem.dbus-path", source), source),
        state=_get(doc, "modem.generic.state", source),
        failed_reason=_opt(str(generic.get("state-failed-reason", "--"))),
        power_state=_opt(str(generic.get("power-state", "--"))),
        access_technologies=tuple(str(t) for t in generic.get("access-technologies", [])),
        signal_quality=_int_or_none(str(signal.get("value", "--")), source, "signal-quality.value"),
        registration=_opt(str(gpp.get("registration-state", "--"))),
        operator=_opt(str(gpp.get("operator-name", "--"))),
        bearers=tuple(str(b) for b in _get(doc, "modem.generic.bearers", source, list)),
    )


def parse_bearer(text: str, source: str = "mmcli -b -J") -> BearerStatus:
    doc = _load(text, source)
    status = _get(doc, "bearer.status", source, dict)
    stats = doc["bearer"].get("stats") or {}
    if not isinstance(stats, dict):
        raise ModemError(f"{source}: key bearer.stats is not an object")
    return BearerStatus(
        connected=status.get("connected") == "yes",
        interface=_opt(str(status.get("interface", "--"))),
        bytes_rx=_int_or_none(str(stats.get("bytes-rx", "--")), source, "bearer.stats.bytes-rx"),
        bytes_tx=_int_or_none(str(stats.get("bytes-tx", "--")), source, "bearer.stats.bytes-tx"),
    )


# -- which link carries the uplink -----------------------------------------------------------


def default_route_interface(route_text: str) -> str | None:
    """Interface of the lowest-metric default route in /proc/net/route text, None if none."""
    best: tuple[int, str] | None = None
    for line in route_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        try:
            metric, flags = int(cols[6]), int(cols[3], 16)
        except ValueError:
            continue
        if flags & 0x1 and (best is None or metric < best[0]):  # RTF_UP
            best = (metric, cols[0])
    return best[1] if best else None


def uplink_kind(interface: str | None) -> str:
    """"ethernet", "wifi", "cellular" or "none", from the interface name."""
    if interface is None:
        return "none"
    for kind, prefixes in (("cellular", CELLULAR_PREFIXES), ("ethernet", ETHERNET_PREFIXES),
                           ("wifi", WIFI_PREFIXES)):
        if interface.startswith(prefixes):
            return kind
    return "ethernet"  # bridges, VLANs, VPN tunnels: anything but the modem is left alone


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModemPolicy:
    stuck_after_s: float = DEFAULT_STUCK_AFTER_S
    reset_wait_s: float = DEFAULT_RESET_WAIT_S
    mm_resets_before_power: int = DEFAULT_MM_RESETS_BEFORE_POWER


@dataclass
class ModemSupervisor:
    """Pure decision logic: feed observations, get the next recovery action (monotonic time)."""

    policy: ModemPolicy
    has_power_control: bool
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("stuck", "mm_reset", "power_cycle", "recovered"), 0))
    _last_rx: int | None = None
    _last_progress: float | None = None
    _attempts: int = 0  # recovery attempts in the current stuck episode
    _next_action_at: float = 0.0

    def observe(self, uplink: str, modem: ModemStatus | None, bearer: BearerStatus | None,
                now: float) -> Action:
        if self._last_progress is None or uplink != "cellular":
            self._last_progress = now  # not our link: nothing to judge, the clock restarts
            self._last_rx = bearer.bytes_rx if bearer else None
            return Action.NONE
        if self._made_progress(modem, bearer):
            self._last_progress = now
            if self._attempts:
                self.counters["recovered"] += 1
                LOGGER.info("modem_recovered", extra={"attempts": self._attempts})
                self._attempts = 0
            return Action.NONE
        if now - self._last_progress < self.policy.stuck_after_s or now < self._next_action_at:
            return Action.NONE
        return self._escalate(modem, now)

    def _made_progress(self, modem: ModemStatus | None, bearer: BearerStatus | None) -> bool:
        rx = bearer.bytes_rx if bearer and bearer.connected else None
        grew = rx is not None and self._last_rx is not None and rx > self._last_rx
        if rx is not None:
            self._last_rx = rx
        return bool(grew and modem is not None and modem.state == "connected")

    def _escalate(self, modem: ModemStatus | None, now: float) -> Action:
        if self._attempts == 0:
            self.counters["stuck"] += 1
        action = self._choose(modem)
        if action is not Action.NONE:
            self.counters[action.value] += 1
        wait = min(self.policy.reset_wait_s * 2 ** self._attempts, MAX_RESET_WAIT_S)
        self._attempts += 1
        self._next_action_at = now + wait
        LOGGER.warning("modem_stuck", extra={"action": action.value, "attempt": self._attempts,
                                             "state": modem.state if modem else "absent",
                                             "next_try_s": wait})
        return action

    def _choose(self, modem: ModemStatus | None) -> Action:
        if modem is None:
            # ModemManager lost the modem (hung USB device): only its power brings it back.
            return Action.POWER_CYCLE if self.has_power_control else Action.NONE
        if self._attempts < self.policy.mm_resets_before_power or not self.has_power_control:
            return Action.MM_RESET
        return Action.POWER_CYCLE


# -- talking to ModemManager -----------------------------------------------------------------


class ModemManagerCli:
    """Runs `mmcli`; every call bounded by MMCLI_TIMEOUT_S."""

    def __init__(self, mmcli: str = "mmcli", timeout_s: float = MMCLI_TIMEOUT_S) -> None:
        self.mmcli = mmcli
        self.timeout_s = timeout_s

    async def run(self, *args: str) -> str:
        command = " ".join((self.mmcli, *args))
        proc: asyncio.subprocess.Process | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                proc = await asyncio.create_subprocess_exec(
                    self.mmcli, *args, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
                out, err = await proc.communicate()
        except TimeoutError:
            if proc is not None:
                proc.kill()
                await proc.wait()
            raise ModemError(f"{command}: no answer in {self.timeout_s} s") from None
        except OSError as exc:
            raise ModemError(f"{command}: cannot run: {exc.strerror or exc}") from exc
        if proc is None or proc.returncode != 0:
            code = proc.returncode if proc else None
            raise ModemError(f"{command}: exit {code}: {err.decode(errors='replace')}")
        return out.decode(errors="replace")

    async def modems(self) -> list[int]:
        return parse_modem_list(await self.run("-L", "-J"))

    async def modem(self, index: int) -> ModemStatus:
        return parse_modem(await self.run("-m", str(index), "-J"), f"mmcli -m {index} -J")

    async def bearer(self, path: str) -> BearerStatus:
        index = path_index(path, "bearer path")
        return parse_bearer(await self.run("-b", str(index), "-J"), f"mmcli -b {index} -J")

    async def reset(self, index: int) -> None:
        await self.run("-m", str(index), "--reset")


class ModemWatch:
    """One pass per `check()`: read, decide, act; mmcli trouble is logged, never raised."""

    def __init__(self, cli: ModemManagerCli, supervisor: ModemSupervisor, *,
                 power_cycle: Callable[[], Awaitable[None]] | None = None,
                 route_file: Path = ROUTE_FILE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cli = cli
        self.supervisor = supervisor
        self._power_cycle = power_cycle
        self._route_file = route_file
        self._clock = clock
        self.last_modem: ModemStatus | None = None

    def uplink(self) -> str:
        try:
            return uplink_kind(default_route_interface(self._route_file.read_text()))
        except OSError:
            return "none"

    async def check(self) -> Action:
        uplink = self.uplink()
        if uplink != "cellular":
            return self.supervisor.observe(uplink, None, None, self._clock())
        modem, bearer = await self._read_state()
        self.last_modem = modem
        action = self.supervisor.observe(uplink, modem, bearer, self._clock())
        await self._act(action, modem)
        return action

    async def _read_state(self) -> tuple[ModemStatus | None, BearerStatus | None]:
        try:
            indexes = await self.cli.modems()
            if not indexes:
                return None, None
            modem = await self.cli.modem(indexes[0])
            for path in modem.bearers:
                bearer = await self.cli.bearer(path)
                if bearer.connected:
                    return modem, bearer
            return modem, None
        except ModemError as exc:
            LOGGER.warning("modem_unreadable", extra={"error": str(exc)})
            return None, None

    async def _act(self, action: Action, modem: ModemStatus | None) -> None:
        try:
            if action is Action.MM_RESET and modem is not None:
                await self.cli.reset(modem.index)
            elif action is Action.POWER_CYCLE and self._power_cycle is not None:
                await self._power_cycle()
        except BoardError as exc:
            LOGGER.error("modem_reset_failed", extra={"action": action.value, "error": str(exc)})
