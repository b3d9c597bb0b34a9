"""A local Mosquitto broker on a free loopback port, for `gateway demo`, the tests and the bench."""

import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

MOSQUITTO: Final = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
# Mosquitto binds within a few ms; this bounds a broken start.
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
# A broker for a fleet's load (`gateway-headend loadtest`, tests/headend/test_fleet.py): one
# connection per simulated gateway, and head-end workers that may fall behind a burst from
# all of them. Mosquitto's defaults would drop QoS 1 messages beyond 1000 queued for a worker
# (max_queued_messages), which a thousand gateways with a window of 4 exceed at once;
# max_connections -1 is the default (no limit but the open-files limit, raised by
# `open_files`), written out so the config says it.
FLEET_CONF: Final = ("max_connections -1\nmax_queued_messages 100000\n"
                     "max_inflight_messages 100\n")
# Open files for a fleet broker: the gateways' connections and some to spare.
FLEET_OPEN_FILES: Final = 8192


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A broker process with `listener PORT 127.0.0.1`, anonymous, no persistence."""

    def __init__(self, workdir: Path, *, port: int | None = None, extra_conf: str = "",
                 open_files: int | None = None) -> None:
        """`open_files`: raise the broker's limit of open files (one per connection) to this,
        at most to the hard limit; None keeps the inherited one."""
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto binary not found")
        self.port = port or free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.log = workdir / f"mosquitto-{self.port}.log"
        # Started as root, mosquitto drops to user `mosquitto`, who cannot read certificates
        # under pytest's 0700 temp directories: stay root in tests.
        stay_root = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"{stay_root}listener {self.port} 127.0.0.1\n"
                             f"allow_anonymous true\npersistence false\n{extra_conf}\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.open_files = open_files

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=self._limits if self.open_files else None)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def _limits(self) -> None:
        """In the broker's process, before exec: the open-files limit for its connections."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.open_files or soft
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None
