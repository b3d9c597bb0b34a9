"""The real `gateway` entry point with one SIGKILL armed at an exact point (hil fault tests).

    python -m tests.harness.crash_points build:3 run --config site.toml

An outside kill cannot reliably hit these points:
  build:N  SIGKILL inside the transaction that stores uplink batch N (before its commit)
  send:N   SIGKILL right after handing the N-th batch publish to the MQTT client
  ack:N    SIGKILL once the N-th ack is noted in memory, before any commit has written it
  ackwrite:N  SIGKILL inside the transaction writing an ack (rows deleted, not committed),
           from the N-th ack written on
Everything else is production code: `gateway.cli.main.main` with the remaining arguments.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from gateway.cli.main import main
from storage import batches
from uplink.acks import PendingAck
from uplink.mqtt import MqttLink


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    """Arm `build:N`, `send:N`, `ack:N` or `ackwrite:N` in this process."""
    where, _, n = spec.partition(":")
    target = int(n)
    if where == "build":
        original = batches.add_batch

        def add_batch(tx: Any, seq: int, *args: Any, **kw: Any) -> None:
            original(tx, seq, *args, **kw)
            if seq == target:
                _die()
        batches.add_batch = add_batch
    elif where == "send":
        original_publish = MqttLink.publish
        sent = [0]

        def publish(self: MqttLink, topic: str, payload: bytes, **kw: Any) -> int:
            mid = original_publish(self, topic, payload, **kw)
            if topic.endswith("/up/batch"):
                sent[0] += 1
                if sent[0] == target:
                    _die()
            return mid
        MqttLink.publish = publish  # type: ignore[method-assign]
    elif where in ("ack", "ackwrite"):
        _arm_ack(where, target)
    else:
        raise SystemExit(f"crash point {spec!r}: give build:N, send:N, ack:N or ackwrite:N")


def _arm_ack(where: str, target: int) -> None:
    """The acks of uplink/acks.py: noted in memory, then written with a later commit."""
    seen = [0]
    if where == "ack":
        original_note = PendingAck.note

        def note(self: PendingAck, seq: int) -> None:
            original_note(self, seq)
            seen[0] += 1
            if seen[0] == target:
                _die()
        PendingAck.note = note  # type: ignore[method-assign]
        return
    original_apply = PendingAck.apply

    def apply(self: PendingAck, tx: Any) -> int | None:
        seq = original_apply(self, tx)
        if seq is not None:
            seen[0] += 1
            if seen[0] >= target:
                _die()
        return seq
    PendingAck.apply = apply  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
