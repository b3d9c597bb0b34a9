"""Uplink settings (the `[uplink]` config section) with their defaults, and broker URL parsing."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from uplink.errors import UplinkError

MQTT_PORT: Final = 1883
MQTTS_PORT: Final = 8883
MQTT_VERSIONS: Final = ("5", "3.1.1")
# Retention of acknowledged batches: beyond these it would crowd out readings on the SD card.
MAX_RETAIN_BYTES: Final = 1024 * 1024 * 1024
MAX_RETAIN_DAYS: Final = 366


@dataclass(frozen=True, slots=True)
class UplinkSettings:
    """Everything the uplink needs from the configuration; durations are seconds."""

    gateway_id: str = "gw1"
    broker_url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "mtr"
    mqtt_version: str = "5"
    client_id: str = ""  # empty: the gateway id
    keepalive_s: int = 60
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password: str | None = None
    key_file: Path = Path("state/gateway_ed25519.pem")
    server_public_key: Path = Path("state/headend_public.pem")
    max_batch_bytes: int = 65536
    batch_interval_s: float = 1.0
    ack_timeout_s: float = 30.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 300.0
    max_in_flight: int = 4
    compress: bool = True
    session_expiry_s: int = 7 * 24 * 3600
    # Acknowledged batches are kept this long (the newest, within both bounds) so that a
    # head-end restored from a backup can ask for them again.
    retain_acked_bytes: int = 8 * 1024 * 1024
    retain_acked_days: int = 7

    def __post_init__(self) -> None:
        if self.mqtt_version not in MQTT_VERSIONS:
            raise UplinkError(f"[uplink] mqtt_version: {self.mqtt_version!r} is not 5 or 3.1.1")
        if not 1024 <= self.max_batch_bytes <= 16 * 1024 * 1024:
            raise UplinkError(f"[uplink] max_batch_bytes: {self.max_batch_bytes} out of range")
        if self.backoff_min_s <= 0 or self.backoff_max_s < self.backoff_min_s:
            raise UplinkError("[uplink] backoff_min_s/backoff_max_s: need 0 < min <= max")
        if self.max_in_flight < 1:
            raise UplinkError("[uplink] max_in_flight: must be at least 1")
        if not 0 <= self.retain_acked_bytes <= MAX_RETAIN_BYTES:
            raise UplinkError(f"[uplink] retain_acked_bytes: {self.retain_acked_bytes} out of "
                              f"range (0 .. {MAX_RETAIN_BYTES})")
        if not 0 <= self.retain_acked_days <= MAX_RETAIN_DAYS:
            raise UplinkError(f"[uplink] retain_acked_days: {self.retain_acked_days} out of "
                              f"range (0 .. {MAX_RETAIN_DAYS})")
        try:
            broker_address(self.broker_url)
        except UplinkError as exc:  # name the key: the config check reports it as uplink.broker_url
            raise UplinkError(f"[uplink] broker_url: {exc}") from None

    @property
    def effective_client_id(self) -> str:
        return self.client_id or self.gateway_id


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def broker_address(url: str) -> BrokerAddress:
    """Parse `mqtt://[user:pass@]host[:port]` or `mqtts://...`; UplinkError naming the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise UplinkError(f"broker URL {url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (MQTTS_PORT if tls else MQTT_PORT)
    except ValueError:
        raise UplinkError(f"broker URL {url!r}: bad port") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return BrokerAddress(parts.hostname, port, tls, user, password)


def topics(prefix: str, gw: str) -> dict[str, str]:
    """The gateway's topics: batch and unavailable (up), ack and cmd (down), status."""
    base = f"{prefix}/{gw}"
    return {"batch": f"{base}/up/batch", "ack": f"{base}/down/ack", "cmd": f"{base}/down/cmd",
            "status": f"{base}/status", "unavailable": f"{base}/up/unavailable"}


# TOML type of each `[uplink]` key (gateway_id comes from the gateway section, not from here).
_PATH_KEYS: Final = frozenset({"tls_ca", "tls_cert", "tls_key", "key_file", "server_public_key"})
_FLOAT_KEYS: Final = frozenset({"batch_interval_s", "ack_timeout_s", "backoff_min_s",
                                "backoff_max_s"})


def _convert(key: str, value: Any, default: Any) -> Any:
    if key in _PATH_KEYS:
        if not isinstance(value, str) or not value:
            raise TypeError("a non-empty path string")
        return Path(value)
    if key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise TypeError("a number of seconds >= 0")
        return float(value)
    expected = type(default) if default is not None else str
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise TypeError(f"a {expected.__name__}")
    return value


def settings_from_section(section: Mapping[str, Any], gateway_id: str) -> UplinkSettings:
    """Validate a TOML `[uplink]` table; UplinkError listing every bad or unknown key."""
    defaults = UplinkSettings()
    known = {f.name for f in fields(UplinkSettings)} - {"gateway_id"}
    values: dict[str, Any] = {"gateway_id": gateway_id}
    problems = [f"[uplink] {key}: unknown key" for key in section if key not in known]
    for key, value in section.items():
        if key in known:
            try:
                values[key] = _convert(key, value, getattr(defaults, key))
            except TypeError as exc:
                problems.append(f"[uplink] {key}: expected {exc}, got {value!r}")
    if problems:
        raise UplinkError("; ".join(problems))
    return UplinkSettings(**values)
