"""Start the gateway-side process for hil tests (the agent now; `gateway run` later)."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

AGENT = Path(__file__).with_name("agent.py")


@dataclass(frozen=True, slots=True)
class GatewayFiles:
    db: Path
    key: Path
    server_pub: Path
    gw: str


def gateway_command(files: GatewayFiles, broker_url: str, *, ticks: int, meters: int,
                    tick_s: float, start_ms: int) -> list[str]:
    """The command line of the gateway process; the one place to switch to `gateway run`."""
    return [sys.executable, str(AGENT), "--db", str(files.db), "--key", str(files.key),
            "--server-pub", str(files.server_pub), "--broker", broker_url, "--gw", files.gw,
            "--ticks", str(ticks), "--meters", str(meters), "--tick-s", str(tick_s),
            "--start-ms", str(start_ms)]


def start_gateway(files: GatewayFiles, broker_url: str, *, crash_at: str | None = None,
                  ticks: int = 20, meters: int = 10, tick_s: float = 0.02,
                  start_ms: int = 1_700_000_000_000) -> "subprocess.Popen[str]":
    env = dict(os.environ)
    env.pop("UPLINK_CRASH_AT", None)
    if crash_at:
        env["UPLINK_CRASH_AT"] = crash_at
    return subprocess.Popen(
        gateway_command(files, broker_url, ticks=ticks, meters=meters, tick_s=tick_s,
                        start_ms=start_ms),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
