"""A throw-away PostgreSQL server (initdb + pg_ctl) on a free loopback port, for the tests,
the bench and `gateway-headend loadtest --local-postgres` (like `uplink.localbroker` for MQTT)."""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from uplink.localbroker import free_port

PG_BIN_DIRS: Final = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")
# initdb of an empty cluster takes a few seconds on a loaded 2-core machine.
START_TIMEOUT_S: Final = 60


def pg_bin() -> Path | None:
    """The directory holding initdb / pg_ctl / postgres, or None when the server is missing."""
    for d in PG_BIN_DIRS:
        if (Path(d) / "pg_ctl").is_file() and (Path(d) / "postgres").is_file():
            return Path(d)
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _demote() -> None:
    # postgres refuses to run as root: the cluster belongs to the `postgres` system user.
    entry = pwd.getpwnam("postgres")
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


class LocalPostgres:
    """One cluster in `workdir/pg` listening on 127.0.0.1:`port`, trust authentication."""

    def __init__(self, workdir: Path, *, port: int | None = None, fsync: bool = True) -> None:
        found = pg_bin()
        if found is None:
            raise RuntimeError("PostgreSQL server binaries not found (make debian-deps)")
        self.bin = found
        self.port = port or free_port()
        # Not under `workdir`: pytest resets its temp root to 0700 (another session may do it
        # while this one runs), and postgres, not root, must reach its data directory.
        self.home = Path(tempfile.mkdtemp(prefix=f"headend-pg-{self.port}-"))
        self.datadir = self.home / "data"
        self.log = workdir / f"pg-{self.port}.log"
        self.fsync = fsync
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        done = subprocess.run([str(self.bin / argv[0]), *argv[1:]], check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              cwd=self.home,
                              preexec_fn=_demote if self._as_root else None)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def _chown(self, path: Path) -> None:
        if self._as_root:
            entry = pwd.getpwnam("postgres")
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> "LocalPostgres":
        self._chown(self.home)
        self.datadir.mkdir(mode=0o700)
        self._chown(self.datadir)
        server_log = self.home / "server.log"
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-locale")
        # synchronous_commit stays on: an ack is only sent for a batch that is durable.
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories="
                f"{self.datadir} -c max_connections=50 -c shared_buffers=128MB "
                f"-c fsync={'on' if self.fsync else 'off'}")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(server_log), "-w",
                  "-t", str(START_TIMEOUT_S), "-o", opts, "start")
        return self

    def postmaster_pid(self) -> int:
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        if self.datadir.exists():
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
            finally:
                with contextlib.suppress(OSError):
                    self.log.write_bytes((self.home / "server.log").read_bytes())
                shutil.rmtree(self.home, ignore_errors=True)
