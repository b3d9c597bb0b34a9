"""`gateway keys init|show`: the gateway Ed25519 identity key, and its public PEM for enrolment."""

import argparse
import sys
from pathlib import Path

from uplink.errors import SigningKeyFileError
from uplink.keys import GATEWAY_KEY_FILE, create_private_key, load_private_key, public_pem

EXIT_OK = 0
EXIT_FAILURE = 1


def key_path(state_dir: Path) -> Path:
    """Where the gateway key lives under a state directory."""
    return state_dir / GATEWAY_KEY_FILE


def _make_state_dir(state_dir: Path) -> None:
    """`init` makes the state directory; a path through a file or a read-only one is refused."""
    if state_dir.exists() and not state_dir.is_dir():
        raise SigningKeyFileError(f"{state_dir}: not a directory")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SigningKeyFileError(f"{state_dir}: cannot create the state directory "
                           f"({exc.strerror or exc})") from None


def keys_init(state_dir: Path) -> str:
    """Create the key (mode 0600, refuses to overwrite); returns the public key PEM."""
    return public_pem(create_private_key(key_path(state_dir)))


def keys_show(state_dir: Path) -> str:
    """The public key PEM of the existing gateway key."""
    return public_pem(load_private_key(key_path(state_dir)))


def _run(action: str, args: argparse.Namespace) -> int:
    try:
        if action == "init":
            _make_state_dir(args.state)
        pem = keys_init(args.state) if action == "init" else keys_show(args.state)
    except SigningKeyFileError as exc:
        sys.stderr.write(f"gateway keys {action}: {exc}\n")
        return EXIT_FAILURE
    if action == "init":
        sys.stderr.write(f"created {key_path(args.state)}; public key for enrolment:\n")
    sys.stdout.write(pem)
    return EXIT_OK


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keys = sub.add_parser("keys", help="the gateway's signing key (identity)")
    actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    for action, help_text in (("init", "create the Ed25519 key (refuses to overwrite)"),
                              ("show", "print the public key as PEM, for enrolment")):
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("--state", type=Path, required=True, metavar="DIR",
                            help="state directory holding the key file")
        parser.set_defaults(func=lambda args, action=action: _run(action, args))
