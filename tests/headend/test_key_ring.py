"""The workers' key ring: an enrolled key is cached for `refresh_s`, so a revoke holds within
that time (and at once with 0); a key given on the command line never outlives a revoke."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from uplink.headend import enrol
from uplink.headend.db import open_store
from uplink.headend.enrol import REFRESH_S, KeyRing
from uplink.keys import public_pem


class StepClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _enrolled(tmp_path: Path) -> tuple[object, str]:
    store = open_store(tmp_path / "he.db")
    pem = public_pem(Ed25519PrivateKey.generate())
    enrol.add(store, "gw-1", pem)
    return store, pem


def test_a_revoke_holds_once_the_cached_key_is_older_than_refresh(tmp_path: Path) -> None:
    store, _ = _enrolled(tmp_path)
    clock = StepClock()
    ring = KeyRing(store, clock=clock)
    assert ring.get("gw-1") is not None
    enrol.revoke(store, "gw-1")
    clock.now += REFRESH_S  # not yet older than the refresh: the cached key still counts
    assert ring.get("gw-1") is not None
    clock.now += 0.001
    assert ring.get("gw-1") is None and "gw-1" not in ring


def test_refresh_zero_looks_the_key_up_at_every_batch(tmp_path: Path) -> None:
    store, _ = _enrolled(tmp_path)
    ring = KeyRing(store, clock=StepClock(), refresh_s=0)  # the clock never moves
    assert ring.get("gw-1") is not None
    enrol.revoke(store, "gw-1")
    assert ring.get("gw-1") is None


def test_a_command_line_key_does_not_outlive_a_revoke(tmp_path: Path) -> None:
    store, _ = _enrolled(tmp_path)
    static = Ed25519PrivateKey.generate().public_key()
    ring = KeyRing(store, {"gw-1": static, "gw-2": static}, refresh_s=0)
    assert ring.get("gw-2") is static  # not in the database: the command line's key
    enrol.revoke(store, "gw-1")
    assert ring.get("gw-1") is None


def test_one_read_of_the_table_serves_every_gateway(tmp_path: Path) -> None:
    """A fleet's worker reads the enrolment once per refresh, not once per gateway; a gateway
    enrolled since that read is looked up when first seen; a revoke holds after the refresh."""
    store = open_store(tmp_path / "he.db")
    for n in range(50):
        enrol.add(store, f"gw-{n}", public_pem(Ed25519PrivateKey.generate()))
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    clock = StepClock()
    ring = KeyRing(store, clock=clock)
    assert all(ring.get(f"gw-{n}") is not None for n in range(50))
    assert len([s for s in statements if "FROM enrolment" in s]) == 1
    enrol.add(store, "gw-new", public_pem(Ed25519PrivateKey.generate()))
    enrol.revoke(store, "gw-7")
    assert ring.get("gw-new") is not None  # not in the last read: looked up by itself
    assert ring.get("gw-7") is not None  # the read is younger than the refresh
    clock.now += REFRESH_S + 0.001
    assert ring.get("gw-7") is None and ring.get("gw-8") is not None
    assert len([s for s in statements if "FROM enrolment" in s]) == 3
