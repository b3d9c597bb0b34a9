"""`gateway demo`: a complete simulated site on this machine, shown as a live status panel.

Every protocol plugin with a `simulate` capability starts its simulators; the board is the
simulated one; a local Mosquitto (when installed, or the broker given with --broker) carries
the signed batches to the reference head-end, which acks them and sends the story's server
commands (gateway/demo/scenario.py). The config is written first and its path printed, so it
can be copied, edited and run with `--config`. On a terminal the view is a refreshing panel,
otherwise plain lines (gateway/demo/view.py).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway.app.logs import setup_logging
from gateway.cli.args import broker_url, non_negative_seconds, positive_int
from gateway.config.loader import ConfigError, load_config
from gateway.config.preflight import directory_problem

if TYPE_CHECKING:
    from drivers.plugin import Simulation

EXIT_USAGE: Final = 2
CONSOLE_ACCOUNT: Final = ("tech", "technician", "demo-console")  # name, role, password
LOG_FILE: Final = "demo.log"


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run a complete simulated site with a live status view")
    demo.add_argument("--state", help="keep keys, databases and ptys under this directory "
                                      "(default: a temporary directory, removed at the end)")
    demo.add_argument("--for", dest="seconds", type=non_negative_seconds, default=0,
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--poll", type=positive_int, default=5,
                      help="poll interval of the meters (s)")
    demo.add_argument("--broker", type=broker_url,
                      help="use this running broker (mqtt://HOST:PORT) instead of "
                           "starting a local Mosquitto")
    demo.add_argument("--config", type=Path,
                      help="run this edited copy of the demo's config (the simulators' ports, "
                           "files and broker are those of this run)")
    demo.set_defaults(func=cmd_demo)


def say(line: str) -> None:
    # a closed stdout (`gateway demo | head`) must not stop the site: the output is a view
    with contextlib.suppress(BrokenPipeError, ValueError):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def cmd_demo(args: argparse.Namespace) -> int:
    state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    if (why := directory_problem(state)) is not None:
        sys.stderr.write(f"gateway demo: --state: {why}\n")
        return EXIT_USAGE
    if args.config is not None and not args.config.is_file():
        sys.stderr.write(f"gateway demo: --config: {args.config} is not a file\n")
        return EXIT_USAGE
    state.mkdir(parents=True, exist_ok=True)
    live = sys.stdout.isatty()
    # on a terminal the panel owns the screen: the service's JSON log lines go to a file
    log = open(state / LOG_FILE, "a") if live else None  # noqa: SIM115 (closed below)
    setup_logging("warning", log)
    broker: Any = None
    sims: list[Simulation] = []
    try:
        from gateway.demo.site import start_simulations

        sims = start_simulations(state, args.poll)
        url = args.broker
        if url is None:
            broker = _local_broker(state)
            url = broker.url if broker is not None else None
        return _run(args, state, sims, url, live)
    finally:
        for sim in sims:
            sim.stop()
        if broker is not None:
            broker.stop()
        if log is not None:
            setup_logging("warning")  # nothing may log into the closed file
            log.close()
        if not args.state:
            shutil.rmtree(state, ignore_errors=True)


def _run(args: argparse.Namespace, state: Path, sims: list[Simulation], url: str | None,
         live: bool) -> int:
    import asyncio

    from gateway.demo.runner import RunOptions, run_site

    written, runs = _write_config(state, sims, url, args.config)
    say(f"config: {written}" + ("" if args.config else
                                "  (copy and edit it, then: gateway demo --config COPY)"))
    try:
        config = load_config(runs)
    except ConfigError as exc:
        sys.stderr.write(f"gateway demo: {written}: {exc}\n")
        return EXIT_USAGE
    hint = (f"technician console: gateway console --config {runs}  "
            f"(login {CONSOLE_ACCOUNT[0]} / {CONSOLE_ACCOUNT[2]})")
    say(f"simulated site: {sum(s.meters for s in sims)} meters on "
        f"{sum(s.buses for s in sims)} buses; uplink "
        f"{url or 'off (install mosquitto, or pass --broker mqtt://HOST:PORT)'}")
    say(hint)
    if live:
        say(f"service log: {state / LOG_FILE}")
    asyncio.run(run_site(config, RunOptions(args.seconds, state, url, written, live, hint)))
    return 0


def _write_config(state: Path, sims: list[Simulation], url: str | None,
                  edited: Path | None) -> tuple[Path, Path]:
    """(the config to show the user, the config the service runs)."""
    from gateway.demo.site import bind_config, site_toml, uplink_toml

    _voucher_key(state)
    text = site_toml(state, sims, uplink_toml(state, url) if url else "") + _console_toml(state)
    _demo_keys(state)  # the gateway key signs voucher receipts too, uplink or not
    site = state / "site.toml"
    site.write_text(text)
    if edited is None:
        return site, site
    bound = state / "run.toml"
    bound.write_text(bind_config(edited.read_text(), text))
    return edited, bound


def _voucher_key(state: Path) -> None:
    from gateway.demo.site import VOUCHER_KEY_FILE
    from uplink.demo import ensure_private_key
    from uplink.keys import public_pem

    key = ensure_private_key(state / VOUCHER_KEY_FILE)
    (state / "voucher_public.pem").write_text(public_pem(key))


def _demo_keys(state: Path) -> None:
    from uplink.demo import demo_keys
    from uplink.keys import public_pem

    (state / "headend_public.pem").write_text(public_pem(demo_keys(state).headend))


def _console_toml(state: Path) -> str:
    from gateway.console.accounts import hash_password

    name, role, password = CONSOLE_ACCOUNT
    return (f'\n[console]\nsocket = "{state / "console.sock"}"\n\n[[console.account]]\n'
            f'name = "{name}"\nrole = "{role}"\npassword_hash = "{hash_password(password)}"\n')


def _local_broker(state: Path) -> Any:
    from uplink.localbroker import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        return None
    (state / "broker").mkdir(exist_ok=True)
    return Mosquitto(state / "broker").start()
