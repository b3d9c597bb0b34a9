"""Gateway enrolment in the head-end's database: public keys, revocation, and the key ring a
worker verifies with (`gateway-headend gateways add|list|revoke`).

A worker looks a gateway up in the database the first time it sees its id and again at most
every `REFRESH_S`, so a gateway added while the workers run is served without a restart.
Revocation is enforced inside the ingest transaction as well (the chain row lock reads the
enrolment row), so a revoked gateway's next batch is refused by every worker at once.
"""

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from uplink.errors import SigningKeyFileError, UplinkError
from uplink.headend.db import execute

LOGGER = logging.getLogger(__name__)

# An unknown or changed gateway is looked up again after this long (`serve --key-refresh`):
# a revoke takes effect within it; 0 looks up at every batch.
REFRESH_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Enrolled:
    gw: str
    public_key: str
    added_ms: int
    revoked_ms: int | None


def parse_public_pem(text: str, what: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise SigningKeyFileError(f"{what}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyFileError(f"{what}: not an Ed25519 public key")
    return key


def add(store: Any, gw: str, pem: str) -> None:
    """Enrol (or re-key) a gateway; a revoked gateway is enrolled again only explicitly."""
    parse_public_pem(pem, f"key of {gw}")
    now = int(time.time() * 1000)
    execute(store, "INSERT INTO enrolment (gw, public_key, added_ms) VALUES (%s, %s, %s) "
            "ON CONFLICT (gw) DO UPDATE SET public_key = excluded.public_key, "
            "added_ms = excluded.added_ms, revoked_ms = NULL", (gw, pem, now))
    _commit(store)


def revoke(store: Any, gw: str) -> None:
    cur = execute(store, "UPDATE enrolment SET revoked_ms = %s WHERE gw = %s "
                  "AND revoked_ms IS NULL", (int(time.time() * 1000), gw))
    _commit(store)
    if cur.rowcount == 0:
        raise UplinkError(f"gateway {gw!r} is not enrolled (or already revoked)")


def listing(store: Any) -> Iterator[Enrolled]:
    for gw, pem, added, revoked in execute(
            store, "SELECT gw, public_key, added_ms, revoked_ms FROM enrolment ORDER BY gw"):
        yield Enrolled(gw, pem, int(added), None if revoked is None else int(revoked))


def _commit(store: Any) -> None:
    if store.backend == "sqlite" and store.db.in_transaction:
        store.db.execute("COMMIT")


class KeyRing(Mapping[str, Ed25519PublicKey]):
    """Gateway keys: those given on the command line, then the database's enrolment.

    With `refresh_s` > 0 the whole enrolment table is read again at most every `refresh_s`
    (one query, not one per gateway: a worker of a fleet would otherwise query the database
    for every gateway every few seconds, in its event loop), a key is parsed only when its PEM
    text changed, and a gateway not in the last read is looked up by itself the first time it
    is seen (an enrolment since the last read), then again after `refresh_s`. With 0, every
    batch looks its gateway up."""

    def __init__(self, store: Any, static: Mapping[str, Ed25519PublicKey] | None = None,
                 *, clock: Any = time.monotonic, refresh_s: float = REFRESH_S) -> None:
        self.store = store
        self.static = dict(static or {})
        self.clock = clock
        self.refresh_s = refresh_s
        self._cache: dict[str, tuple[float, Ed25519PublicKey | None]] = {}
        self._parsed: dict[str, Ed25519PublicKey] = {}  # PEM text -> key
        self._read_at: float | None = None

    def _key_of(self, gw: str, pem: str, revoked: Any) -> Ed25519PublicKey | None:
        if revoked is not None:
            return None  # revoked in the database: a key on the command line does not count
        key = self._parsed.get(pem)
        if key is None:
            key = self._parsed[pem] = parse_public_pem(pem, f"enrolled key of {gw}")
        return key

    def _lookup(self, gw: str) -> Ed25519PublicKey | None:
        row = execute(self.store, "SELECT public_key, revoked_ms FROM enrolment WHERE gw = %s",
                      (gw,)).fetchone()
        if row is None:
            return self.static.get(gw)
        return self._key_of(gw, row[0], row[1])

    def _read_all(self, now: float) -> None:
        """Every enrolled gateway's key as of now; those enrolled no more fall back."""
        fresh: dict[str, tuple[float, Ed25519PublicKey | None]] = {}
        for gw, pem, revoked in execute(self.store,
                                        "SELECT gw, public_key, revoked_ms FROM enrolment"):
            try:
                fresh[gw] = (now, self._key_of(gw, pem, revoked))
            except UplinkError:
                fresh[gw] = (now, None)
        self._cache = fresh
        self._read_at = now
        LOGGER.debug("key_ring_read", extra={"gateways": len(fresh)})

    def get(self, gw: str, default: Any = None) -> Any:
        now = self.clock()
        if self.refresh_s > 0 and (self._read_at is None or now - self._read_at > self.refresh_s):
            try:
                self._read_all(now)
            except UplinkError:
                self._cache.clear()
        cached = self._cache.get(gw)
        if cached is None or self.refresh_s <= 0 or now - cached[0] > self.refresh_s:
            try:
                key = self._lookup(gw)
            except UplinkError:
                key = None
            cached = (now, key)
            self._cache[gw] = cached
        return cached[1] if cached[1] is not None else default

    def __getitem__(self, gw: str) -> Ed25519PublicKey:
        key = self.get(gw)
        if key is None:
            raise KeyError(gw)
        return key

    def __iter__(self) -> Iterator[str]:
        return iter({*self.static, *(g for g, (_, k) in self._cache.items() if k)})

    def __len__(self) -> int:
        return sum(1 for _ in self)
