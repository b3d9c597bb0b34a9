"""What `gateway demo` needs from the uplink: keys kept under a state directory and a head-end."""

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from uplink.headend.server import HeadEnd
from uplink.headend.store import HeadendStore
from uplink.keys import GATEWAY_KEY_FILE, HEADEND_KEY_FILE, create_private_key, load_private_key

HEADEND_DB_FILE: Final = "headend.db"


@dataclass(frozen=True, slots=True)
class DemoKeys:
    gateway: Ed25519PrivateKey
    headend: Ed25519PrivateKey


def ensure_private_key(path: Path) -> Ed25519PrivateKey:
    """Load the key at `path`, creating it (mode 0600) on first use."""
    return load_private_key(path) if path.exists() else create_private_key(path)


def demo_keys(state: Path) -> DemoKeys:
    """Both keys under `state`; the gateway key where `gateway keys show --state` finds it."""
    return DemoKeys(ensure_private_key(state / GATEWAY_KEY_FILE),
                    ensure_private_key(state / HEADEND_KEY_FILE))


def demo_headend(state: Path, broker_url: str, gateway_id: str, keys: DemoKeys, *,
                 prefix: str = "mtr") -> HeadEnd:
    """A head-end with its database under `state`, enrolling the demo gateway.

    Run it with `await headend.run()` (or `run_headend`); close `headend.store` afterwards.
    """
    store = HeadendStore(state / HEADEND_DB_FILE)
    return HeadEnd(store, {gateway_id: keys.gateway.public_key()}, keys.headend,
                   broker_url=broker_url, prefix=prefix)
