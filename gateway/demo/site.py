"""The demo's site: every plugin's simulators, and the one config file the service runs.

The config is written as a person would write it (`STATE/site.toml`), so it can be copied and
edited; `gateway demo --config COPY` runs the copy against freshly started simulators: the keys
that name this run's simulator ports, files and broker are bound to this run, everything else
(meters, poll intervals, tariffs, prepaid meters) is the user's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import tomlkit

if TYPE_CHECKING:
    from drivers.plugin import Simulation

# The prepaid meters of the scenario (gateway/demo/scenario.py); a site without them has none.
RUN_DOWN_METER: Final = "shop-01"  # topped up for under a minute of its load: runs out
STEADY_METER: Final = "flat-11"  # time-of-use tariff, a comfortable credit
VOUCHER_KID: Final = "demo-utility"
VOUCHER_KEY_FILE: Final = "voucher_ed25519.pem"
# The keys of a bus or section that name something of this run (ports, files, the broker).
BUS_BINDINGS: Final = ("port", "host", "tcp_port", "key_file")
UPLINK_BINDINGS: Final = ("broker_url", "key_file", "server_public_key")

PREPAY: Final = """
[prepay]
timezone = "Europe/Berlin"
currency = "EUR"
reconnect = "automatic"
voucher_keys = {{ "{kid}" = "{voucher_pub}" }}

# A demo price, so that a minute of a shop's load is worth watching.
[prepay.tariffs.shop]
currency = "EUR"
versions = [ {{ effective_from = "2026-01-01", price = "2.50" }} ]

# Time of use: nights cheaper, and a standing charge per day.
[prepay.tariffs.day-night]
currency = "EUR"
[[prepay.tariffs.day-night.versions]]
effective_from = "2026-01-01"
price = "0.32"
standing_per_day = "0.45"
bands = [ {{ days = "all", start = "22:00", end = "06:00", price = "0.21" }} ]
"""
PREPAID_METER: Final = """
[prepay.meters.{meter}]
tariff = "{tariff}"
mode = "automatic"
warn_limit = "{warn}"
relay = "relay-{meter}"
"""


def start_simulations(state: Path, poll_s: int) -> list[Simulation]:
    """Every plugin that can simulate its meters starts its simulators (the demo names none)."""
    from gateway.wiring.protocols import plugins

    sims: list[Simulation] = []
    try:
        for plugin in plugins():
            if plugin.simulate is not None:
                sims.append(plugin.simulate(state / plugin.name, poll_s))
    except BaseException:
        for sim in sims:
            sim.stop()
        raise
    return sims


def site_toml(state: Path, sims: list[Simulation], uplink: str) -> str:
    """The whole config of the demo site: header, the simulated buses and meters, prepay."""
    header = (f'gateway_id = "gw-demo"\n\n[storage]\npath = "{state / "gateway.db"}"\n'
              f'commit_interval_ms = 1000\n\n[board]\nkind = "simulated"\n'
              f'state_dir = "{state / "board"}"\n\n')
    buses = "".join(s.toml for s in sims)
    return header + buses + prepay_toml(state, meter_ids(buses)) + uplink


def meter_ids(toml: str) -> set[str]:
    return {m["id"] for m in tomllib.loads(toml).get("meter", [])}


def prepay_toml(state: Path, meters: set[str]) -> str:
    """The prepay section for the scenario's meters that this site has."""
    chosen = [(m, t, w) for m, t, w in ((RUN_DOWN_METER, "shop", "0.10"),
                                        (STEADY_METER, "day-night", "5.00")) if m in meters]
    if not chosen:
        return ""
    text = PREPAY.format(kid=VOUCHER_KID, voucher_pub=state / "voucher_public.pem")
    return text + "".join(PREPAID_METER.format(meter=m, tariff=t, warn=w) for m, t, w in chosen)


def uplink_toml(state: Path, broker_url: str) -> str:
    return (f'\n[uplink]\nbroker_url = "{broker_url}"\n'
            f'key_file = "{state / "gateway_ed25519.pem"}"\n'
            f'server_public_key = "{state / "headend_public.pem"}"\n')


def bind_config(user_text: str, generated: str) -> str:
    """The user's config with this run's simulator ports, files and broker put in.

    A bus the simulators do not serve is left as written (it may be a real adapter)."""
    doc = tomlkit.parse(user_text)
    ours = tomllib.loads(generated)
    served = {bus["id"]: bus for bus in ours.get("bus", [])}
    for bus in doc.get("bus", []):
        _copy(served.get(str(bus.get("id"))), bus, BUS_BINDINGS)
    for section, keys in (("storage", ("path",)), ("board", ("kind", "state_dir")),
                          ("uplink", UPLINK_BINDINGS), ("console", ("socket",))):
        if section in doc and section in ours:
            _copy(ours[section], doc[section], keys)
    if "prepay" in doc and "prepay" in ours:
        doc["prepay"]["voucher_keys"] = ours["prepay"]["voucher_keys"]
    return tomlkit.dumps(doc)


def _copy(source: dict[str, Any] | None, target: Any, keys: tuple[str, ...]) -> None:
    for key in keys:
        if source is not None and key in source:
            target[key] = source[key]
