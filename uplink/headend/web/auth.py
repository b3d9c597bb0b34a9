"""Accounts of the web page: scrypt password hashes, roles as the gateway console has them
(viewer < technician < admin), and an optional scope of gateways and meters per account.

Sessions are random tokens held in memory by the serving process (a restart logs everyone
out, which is acceptable for a read-only page).
"""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

from uplink.errors import UplinkError
from uplink.headend.db import execute

ROLES: Final = ("viewer", "technician", "admin")
SESSION_S: Final = 8 * 3600
# scrypt cost: ~50 ms per login on a Pi-class CPU, far too slow for guessing at scale.
SCRYPT_N: Final = 2**14


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str
    gateways: frozenset[str] | None  # None: every gateway
    meters: frozenset[str] | None  # None: every meter

    def may_see(self, gw: str, meter: str | None = None) -> bool:
        if self.gateways is not None and gw not in self.gateways:
            return False
        return meter is None or self.meters is None or meter in self.meters

    def at_least(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=SCRYPT_N, r=8, p=1)
    return hmac.compare_digest(got.hex(), digest)


def _scope(text: str | None) -> frozenset[str] | None:
    return None if not text else frozenset(x for x in text.split(",") if x)


def add_account(store: Any, name: str, password: str, role: str,
                gateways: list[str] | None = None, meters: list[str] | None = None) -> None:
    if role not in ROLES:
        raise UplinkError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if not name or len(password) < 8:
        raise UplinkError("an account needs a name and a password of at least 8 characters")
    execute(store, "INSERT INTO accounts (name, pw_hash, role, gateways, meters) VALUES "
            "(%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET pw_hash = excluded.pw_hash, "
            "role = excluded.role, gateways = excluded.gateways, meters = excluded.meters",
            (name, hash_password(password), role, ",".join(gateways) if gateways else None,
             ",".join(meters) if meters else None))
    if store.backend == "sqlite" and store.db.in_transaction:
        store.db.execute("COMMIT")


def authenticate(store: Any, name: str, password: str) -> Account | None:
    row = execute(store, "SELECT pw_hash, role, gateways, meters FROM accounts WHERE name = %s",
                  (name,)).fetchone()
    if row is None:
        check_password(password, hash_password("timing"))  # same cost for unknown names
        return None
    if not check_password(password, row[0]):
        return None
    return Account(name, row[1], _scope(row[2]), _scope(row[3]))


class Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[float, Account]] = {}

    def open(self, account: Account) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._by_token[token] = (time.monotonic() + SESSION_S, account)
        return token

    def get(self, token: str | None) -> Account | None:
        if not token:
            return None
        with self._lock:
            entry = self._by_token.get(token)
            if entry is None or entry[0] < time.monotonic():
                self._by_token.pop(token, None)
                return None
            return entry[1]

    def close(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)
