"""A local Mosquitto broker on a free loopback port, for `gateway demo`, the tests and the bench."""

import os
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """A broker process with `listener PORT 127.0.0.1`, anonymous, no persistence."""

    def __init__(self, workdir: Path, *, port: int | None = None, extra_conf: str = "") -> None:
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

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)],
                                         stdout=log, stderr=subprocess.STDOUT)
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

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        self.proc = None
