"""The real `gateway` entry point with one SIGKILL armed at an exact point (hil fault tests).

    python -m tests.harness.crash_points build:3 run --config site.toml

An outside kill cannot reliably hit these points:
  build:N  SIGKILL inside the transaction that stores uplink batch N (before its commit)
  send:N   SIGKILL right after handing the N-th batch publish to the MQTT client
Everything else is production code: `gateway.cli.main.main` with the remaining arguments.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from gateway.cli.main import main
from storage import batches
from uplink.mqtt import MqttLink


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(spec: str) -> None:
    """Arm `build:N` or `send:N` in this process."""
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
    else:
        raise SystemExit(f"crash point {spec!r}: give build:N or send:N")


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
