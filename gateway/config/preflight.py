"""Start-up checks beyond the file itself: what `gateway run` would trip on, found before it starts.

The config can be valid and the site still unable to start: a key file missing or not PEM, the
database directory read-only (a worn SD card remounts read-only), the board state directory
impossible to create. `check-config` and `run` both call `environment_problems`, so a technician
gets every such problem at once, each on one line naming the file and the key, and exit status 2
-- instead of a traceback from whichever component happens to open its file first.

Nothing here creates or changes a file: directories that may be made are only checked to be
makeable (their nearest existing parent is writable). Devices are never opened (opening
/dev/watchdog would arm it).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

from core.schema import Problems
from gateway.config.loader import GatewayConfig

TLS_KEYS = ("tls_ca", "tls_cert", "tls_key")
GATEWAY_KEY_HINT = "create it with `gateway keys init --state DIR`"


def environment_problems(config: GatewayConfig) -> list[str]:
    """Every start-up problem outside the config's own syntax, as config-error lines."""
    problems = Problems(str(config.source))
    _check_storage(config, problems)
    _check_board(config, problems)
    _check_uplink(config, problems)
    _check_prepay(config, problems)
    _check_bus_files(config, problems)
    return problems.lines


def directory_problem(path: Path) -> str | None:
    """Why `path` cannot be used as a writable directory (existing, or made on start), or None."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"directory {path} is not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{path} cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {parent} is not writable"
    return None


def _check_storage(config: GatewayConfig, problems: Problems) -> None:
    db = config.storage.path
    if (why := directory_problem(db.parent)) is not None:
        problems.add("storage.path", f"database directory: {why}")
    elif db.is_dir():
        problems.add("storage.path", f"{db} is a directory, not a database file")
    elif db.exists() and not os.access(db, os.R_OK | os.W_OK):
        problems.add("storage.path", f"database {db} is not readable and writable")


def _check_board(config: GatewayConfig, problems: Problems) -> None:
    state_dir = Path(config.board["state_dir"])
    if (why := directory_problem(state_dir)) is not None:
        problems.add("board.state_dir", f"state directory: {why}")
    if config.board.get("kind") != "rpi":
        return
    from board.interface import BoardError
    from board.profile import load_profile

    try:
        load_profile(config.board.get("profile") or "")
    except BoardError as exc:
        problems.add("board.profile", str(exc))
    watchdog = config.board.get("hardware_watchdog") or ""
    if watchdog and not Path(watchdog).exists():
        problems.add("board.hardware_watchdog", f"device {watchdog} does not exist")


def _check_uplink(config: GatewayConfig, problems: Problems) -> None:
    settings = config.uplink
    if settings is None:
        return
    from uplink.errors import SigningKeyFileError
    from uplink.keys import load_private_key, load_public_key

    try:
        load_private_key(settings.key_file)
    except SigningKeyFileError as exc:
        problems.add("uplink.key_file", f"gateway key: {exc} ({GATEWAY_KEY_HINT})")
    try:
        load_public_key(settings.server_public_key)
    except SigningKeyFileError as exc:
        problems.add("uplink.server_public_key", f"server public key: {exc}")
    _check_tls(settings, problems)


def _check_tls(settings: Any, problems: Problems) -> None:
    """The TLS files load the way paho's tls_set loads them when the uplink connects."""
    paths: dict[str, Path | None] = {name: getattr(settings, name) for name in TLS_KEYS}
    for name, path in paths.items():
        if path is not None and not _readable_file(path):
            problems.add(f"uplink.{name}", f"{path}: missing or not a readable file")
            paths[name] = None  # reported once; not parsed below
    context = ssl.create_default_context()
    ca, cert, key = paths["tls_ca"], paths["tls_cert"], paths["tls_key"]
    if ca is not None:
        try:
            context.load_verify_locations(cafile=str(ca))
        except ssl.SSLError as exc:
            problems.add("uplink.tls_ca", f"{ca}: not a PEM CA bundle ({exc.reason})")
    # without tls_key the certificate file must hold the key too; a missing key is reported
    if cert is not None and (key is not None or settings.tls_key is None):
        try:
            context.load_cert_chain(str(cert), str(key) if key else None)
        except ssl.SSLError as exc:
            problems.add("uplink.tls_cert", f"{cert}: certificate and key do not load "
                                            f"({exc.reason})")


def _check_prepay(config: GatewayConfig, problems: Problems) -> None:
    settings = config.prepay
    if settings is None or not settings.voucher_keys:
        return
    from uplink.errors import SigningKeyFileError
    from uplink.keys import load_private_key, load_public_key

    for kid, path in settings.voucher_keys.items():
        try:
            load_public_key(Path(path))
        except SigningKeyFileError as exc:
            problems.add(f"prepay.voucher_keys.{kid}", f"voucher public key: {exc}")
    # Receipts are signed with the gateway key; without [uplink] it lives beside the database
    # and is optional (vouchers are then disabled), but a damaged one stops the start.
    default_key = config.storage.path.parent / "gateway_ed25519.pem"
    if config.uplink is None and default_key.exists():
        try:
            load_private_key(default_key)
        except SigningKeyFileError as exc:
            problems.add("prepay.voucher_keys", f"gateway key signing receipts: {exc}")


def _check_bus_files(config: GatewayConfig, problems: Problems) -> None:
    """The files a bus's protocol keys name (each plugin checks its own)."""
    from gateway.wiring.protocols import plugin

    for index, bus in enumerate(config.buses):
        owner = plugin(bus.protocol) if bus.protocol else None
        if owner is not None and owner.check_files is not None:
            owner.check_files(bus, f"bus[{index}]", problems)


def _readable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)
