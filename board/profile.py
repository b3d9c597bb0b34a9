"""Board profiles as data: which GPIO chip line drives each relay, input, LED and modem power.

A profile is a JSON file in `board/profiles/` (or any path the config names). Every key is
checked: an unknown key, a missing line number or a line used twice is a `BoardError` that
names the file and the key, found at start-up rather than when a relay is first switched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from board.interface import BoardError

PROFILES_DIR = Path(__file__).with_name("profiles")
BIASES = ("as_is", "disabled", "pull_up", "pull_down")
LED_ROLES = ("status", "uplink", "fault")
OUTPUT_KINDS = ("relay", "led", "alarm")
DEFAULT_MODEM_OFF_S = 5  # long enough for a modem's supply capacitors to drain

_TOP_KEYS = {"name", "description", "source", "chip", "outputs", "inputs", "leds", "modem_power"}
_PIN_KEYS = {"line", "chip", "active_low", "bias", "kind"}
_MODEM_KEYS = _PIN_KEYS | {"off_s"}


@dataclass(frozen=True, slots=True)
class LinePin:
    """One GPIO line: chip device path, line offset, and whether low means active."""

    chip: str
    line: int
    active_low: bool = False
    bias: str = "as_is"
    kind: str = "relay"


@dataclass(frozen=True, slots=True)
class SysfsLed:
    """An LED driven by the kernel LED class (/sys/class/leds/NAME), e.g. the Pi's ACT LED."""

    path: str


@dataclass(frozen=True, slots=True)
class ModemPower:
    """A line that switches the modem's supply: active = powered."""

    pin: LinePin
    off_s: int = DEFAULT_MODEM_OFF_S


@dataclass(frozen=True, slots=True)
class BoardProfile:
    name: str
    chip: str
    outputs: dict[str, LinePin]
    inputs: dict[str, LinePin]
    leds: dict[str, LinePin | SysfsLed]
    modem_power: ModemPower | None = None


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the gateway."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path) -> BoardProfile:
    """Load a shipped profile by name, or a profile file by path; BoardError names the file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILES_DIR / f"{name_or_path}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BoardError(
            f"board profile {str(name_or_path)!r} not found (shipped: {available_profiles()})"
        ) from None
    except (OSError, ValueError) as exc:
        raise BoardError(f"board profile {path}: unreadable JSON: {exc}") from exc
    return parse_profile(raw, source=str(path))


def parse_profile(raw: Any, *, source: str) -> BoardProfile:
    """Validate a decoded profile document; `source` names it in errors."""
    if not isinstance(raw, dict):
        raise BoardError(f"board profile {source}: top level must be an object")
    _reject_unknown(raw, _TOP_KEYS, source, "")
    chip = _require_str(raw, "chip", source, "")
    outputs = {
        name: _parse_pin(spec, chip, source, f"outputs.{name}")
        for name, spec in _section(raw, "outputs", source).items()
    }
    inputs = {
        name: _parse_pin(spec, chip, source, f"inputs.{name}")
        for name, spec in _section(raw, "inputs", source).items()
    }
    leds = {
        role: _parse_led(spec, chip, source, f"leds.{role}")
        for role, spec in _section(raw, "leds", source).items()
    }
    for role in leds:
        if role not in LED_ROLES:
            raise BoardError(f"board profile {source}: leds.{role}: role not in {LED_ROLES}")
    modem = _parse_modem(raw.get("modem_power"), chip, source)
    profile = BoardProfile(
        name=_require_str(raw, "name", source, ""),
        chip=chip,
        outputs=outputs,
        inputs=inputs,
        leds=leds,
        modem_power=modem,
    )
    _check_no_shared_lines(profile, source)
    return profile


def _section(raw: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise BoardError(f"board profile {source}: {key} must be an object")
    return value


def _parse_pin(
    spec: Any, chip: str, source: str, where: str, keys: set[str] = _PIN_KEYS
) -> LinePin:
    if not isinstance(spec, dict):
        raise BoardError(f"board profile {source}: {where} must be an object")
    _reject_unknown(spec, keys, source, where)
    line = spec.get("line")
    if not isinstance(line, int) or isinstance(line, bool) or line < 0:
        raise BoardError(f"board profile {source}: {where}.line must be a non-negative integer")
    active_low = spec.get("active_low", False)
    if not isinstance(active_low, bool):
        raise BoardError(f"board profile {source}: {where}.active_low must be true or false")
    bias = spec.get("bias", "as_is")
    if bias not in BIASES:
        raise BoardError(f"board profile {source}: {where}.bias must be one of {BIASES}")
    kind = spec.get("kind", "relay")
    if kind not in OUTPUT_KINDS:
        raise BoardError(f"board profile {source}: {where}.kind must be one of {OUTPUT_KINDS}")
    pin_chip = spec.get("chip", chip)
    if not isinstance(pin_chip, str) or not pin_chip:
        raise BoardError(f"board profile {source}: {where}.chip must be a device path")
    return LinePin(chip=pin_chip, line=line, active_low=active_low, bias=bias, kind=kind)


def _parse_led(spec: Any, chip: str, source: str, where: str) -> LinePin | SysfsLed:
    if isinstance(spec, dict) and "sysfs" in spec:
        _reject_unknown(spec, {"sysfs"}, source, where)
        path = spec["sysfs"]
        if not isinstance(path, str) or not path.startswith("/sys/class/leds/"):
            raise BoardError(f"board profile {source}: {where}.sysfs must be /sys/class/leds/NAME")
        return SysfsLed(path=path)
    pin = _parse_pin(spec, chip, source, where)
    return LinePin(pin.chip, pin.line, pin.active_low, pin.bias, kind="led")


def _parse_modem(spec: Any, chip: str, source: str) -> ModemPower | None:
    if spec is None:
        return None
    pin = _parse_pin(spec, chip, source, "modem_power", _MODEM_KEYS)
    off_s = spec.get("off_s", DEFAULT_MODEM_OFF_S)
    if not isinstance(off_s, int) or isinstance(off_s, bool) or not 1 <= off_s <= 60:
        raise BoardError(f"board profile {source}: modem_power.off_s must be 1..60 seconds")
    return ModemPower(pin=pin, off_s=off_s)


def _check_no_shared_lines(profile: BoardProfile, source: str) -> None:
    seen: dict[tuple[str, int], str] = {}
    named: list[tuple[str, LinePin | SysfsLed]] = [
        *((f"outputs.{n}", p) for n, p in profile.outputs.items()),
        *((f"inputs.{n}", p) for n, p in profile.inputs.items()),
        *((f"leds.{n}", p) for n, p in profile.leds.items()),
    ]
    if profile.modem_power is not None:
        named.append(("modem_power", profile.modem_power.pin))
    for where, pin in named:
        if not isinstance(pin, LinePin):
            continue
        key = (pin.chip, pin.line)
        if key in seen:
            raise BoardError(
                f"board profile {source}: {where} uses {pin.chip} line {pin.line}, "
                f"already used by {seen[key]}"
            )
        seen[key] = where


def _reject_unknown(raw: dict[str, Any], allowed: set[str], source: str, where: str) -> None:
    for key in raw:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise BoardError(f"board profile {source}: unknown key {prefix}{key}")


def _require_str(raw: dict[str, Any], key: str, source: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        prefix = f"{where}." if where else ""
        raise BoardError(f"board profile {source}: {prefix}{key} must be a non-empty string")
    return value
