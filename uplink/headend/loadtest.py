"""`gateway-headend loadtest`: a simulated fleet against a broker and N head-end workers,
then the check that every record of every gateway is stored exactly once and acked.

Without `--broker` a local Mosquitto is started, without `--db` a local PostgreSQL (both in
a temp dir, gone afterwards); `--workers N` starts N `gateway-headend serve` processes on the
shared subscription. Every simulated gateway has its own MQTT connection, client id, key and
chain (`loadpub.py`), as a real fleet. Prints one JSON object: counts, seconds, values/s
(total and per worker), loss, duplicates, the CPU of each process and of the rest of the
machine.
"""

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from uplink.headend import enrol
from uplink.headend.cpu import cpu_seconds, machine_busy_seconds, tree_cpu_seconds
from uplink.headend.db import execute, open_store
from uplink.headend.fleet import BATCH_CAP, FleetSpec, SimGateway, build_fleet
from uplink.headend.loadpub import FleetPublisher
from uplink.keys import create_private_key

READY_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class LoadOptions:
    spec: FleetSpec
    broker_url: str | None
    db: str | None
    workers: int
    topic_prefix: str = "mtr"
    timeout_s: float = 600.0
    build_processes: int = 2
    # transactions in flight per worker (serve --store-connections)
    store_connections: int = 2


@dataclass(slots=True)
class Services:
    broker: str
    db: str
    # pids whose CPU is accounted (local services only): name -> (pid, whole tree?)
    pids: dict[str, tuple[int, bool]]

    def cpu(self) -> dict[str, float]:
        return {name: tree_cpu_seconds(pid) if tree else cpu_seconds(pid)
                for name, (pid, tree) in self.pids.items()}


@contextlib.contextmanager
def _services(opts: LoadOptions, tmp: Path) -> Iterator[Services]:
    """The broker URL and database to use, starting local ones where none was given."""
    with contextlib.ExitStack() as stack:
        found = Services(opts.broker_url or "", opts.db or "", {})
        if opts.broker_url is None:
            from uplink.localbroker import FLEET_CONF, FLEET_OPEN_FILES, Mosquitto
            mosq = Mosquitto(tmp, extra_conf=FLEET_CONF, open_files=FLEET_OPEN_FILES).start()
            stack.callback(mosq.stop)
            found.broker = mosq.url
            assert mosq.proc is not None
            found.pids["broker"] = (mosq.proc.pid, False)
        if opts.db is None:
            from uplink.headend.localpg import LocalPostgres
            pg = LocalPostgres(tmp).start()
            stack.callback(pg.stop)
            found.db = pg.url
            found.pids["database"] = (pg.postmaster_pid(), True)
        yield found


def start_workers(n: int, broker: str, db: str, key: Path, prefix: str,
                  tmp: Path, store_connections: int = 1) -> list[subprocess.Popen[bytes]]:
    """N serve processes; returns once each has its subscriptions confirmed."""
    procs = []
    # a batch stored by one worker (or store connection) just before its predecessor is
    # not a gap
    concurrent = n > 1 or store_connections > 1
    for i in range(n):
        log = (tmp / f"worker-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uplink.headend.cli", "serve", "--broker", broker, "--db", db,
             "--key", str(key), "--prefix", prefix,
             "--store-connections", str(store_connections),
             "--gap-grace", "2" if concurrent else "0"], stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + READY_TIMEOUT_S
    for i, proc in enumerate(procs):
        logfile = tmp / f"worker-{i}.log"
        while b"headend_ready" not in logfile.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_workers(procs)
                raise RuntimeError(f"worker {i} did not start: {logfile.read_text()[-2000:]}")
            time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def enrol_fleet(db: str, fleet: list[SimGateway]) -> None:
    store: Any = open_store(db)
    try:
        for g in fleet:
            enrol.add(store, g.gw, g.public_pem)
    finally:
        store.close()


def check_stored(db: str, fleet: list[SimGateway]) -> dict[str, int]:
    """Every record of every gateway held exactly once, every chain complete."""
    store: Any = open_store(db, create=False)
    try:
        held = {gw: (int(n), int(lo), int(hi)) for gw, n, lo, hi in execute(
            store, "SELECT gw, count(*), min(id), max(id) FROM records GROUP BY gw")}
        chains = dict(execute(store, "SELECT gw, contiguous FROM gateways"))
        bad = {k: int(n) for k, n in execute(
            store, "SELECT kind, count(*) FROM anomalies GROUP BY kind")}
    finally:
        store.close()
    missing = incomplete = 0
    for g in fleet:
        n, lo, hi = held.get(g.gw, (0, 0, -1))
        missing += g.records - n
        # ids are the gateway's outbox ids: consecutive, so n == span means no duplicate id
        incomplete += int(n != hi - lo + 1 or int(chains.get(g.gw, 0)) != len(g.batches))
    return {"missing_records": missing, "incomplete_gateways": incomplete,
            "forks": bad.get("fork", 0), "duplicate_records": bad.get("duplicate_record", 0),
            "gap_anomalies": bad.get("gap", 0)}


def run(opts: LoadOptions, fleet: list[SimGateway] | None = None) -> dict[str, Any]:
    """One load test; a prebuilt `fleet` (of `opts.spec`) is reused, e.g. by the bench."""
    t0 = time.monotonic()
    if fleet is None:
        fleet = build_fleet(opts.spec, processes=opts.build_processes)
    built_s = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="loadtest-") as name:
        tmp = Path(name)
        key = create_private_key(tmp / "headend.pem")
        with _services(opts, tmp) as svc:
            enrol_fleet(svc.db, fleet)
            procs = start_workers(opts.workers, svc.broker, svc.db, tmp / "headend.pem",
                                  opts.topic_prefix, tmp, opts.store_connections)
            for i, proc in enumerate(procs):
                svc.pids[f"worker_{i}"] = (proc.pid, False)
            try:
                pub = FleetPublisher(svc.broker, opts.topic_prefix, fleet, key.public_key())
                before = {**svc.cpu(), "fleet": time.process_time()}
                machine0, t_run = machine_busy_seconds(), time.monotonic()
                complete = pub.run(opts.timeout_s)
                machine1, t_run = machine_busy_seconds(), time.monotonic() - t_run
                after = {**svc.cpu(), "fleet": time.process_time()}
            finally:
                stop_workers(procs)
            result = check_stored(svc.db, fleet)
    cpu = {k: round(after[k] - before[k], 2) for k in after}
    # what the rest of the machine used meanwhile (other work sharing the cores)
    others = (machine1 - machine0 - sum(cpu.values())) / max(t_run, 1e-6)
    return {**_report(opts, fleet, pub, complete, built_s, result), "cpu_s": cpu,
            "other_cores_busy": round(max(0.0, others), 2)}


def _report(opts: LoadOptions, fleet: list[SimGateway], pub: FleetPublisher, complete: bool,
            built_s: float, check: dict[str, int]) -> dict[str, Any]:
    seconds = max(1e-6, pub.stats.last_ack - pub.stats.first_publish)
    values = sum(g.values for g in fleet)
    ok = complete and not any(check[k] for k in ("missing_records", "incomplete_gateways",
                                                  "forks", "duplicate_records"))
    return {"ok": ok, "gateways": len(fleet), "meters": opts.spec.meters,
            "minutes": opts.spec.minutes, "workers": opts.workers,
            "batches": sum(len(g.batches) for g in fleet),
            "records": sum(g.records for g in fleet), "values": values,
            "build_s": round(built_s, 1), "seconds": round(seconds, 2),
            "values_per_s": round(values / seconds),
            "values_per_s_per_worker": round(values / seconds / max(1, opts.workers)),
            "connections": pub.stats.connections, "connect_s": pub.stats.connect_s,
            "reconnects": pub.stats.reconnects, "bad_acks": pub.stats.bad_acks,
            "published": pub.stats.published, "resent": pub.stats.resent,
            "all_acked": complete, **check}


def cmd_loadtest(args: Any) -> int:
    import json
    spec = FleetSpec(args.gateways, args.meters, args.minutes, batch_cap=args.batch_bytes)
    opts = LoadOptions(spec, args.broker, args.db, args.workers, args.prefix, args.timeout,
                       store_connections=args.store_connections)
    result = run(opts)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result["ok"] else 1


def register(sub: Any) -> None:
    p = sub.add_parser("loadtest", help="simulated fleet through a broker into N workers")
    p.add_argument("--gateways", type=int, default=100)
    p.add_argument("--meters", type=int, default=200)
    p.add_argument("--minutes", type=int, default=1, help="one reading per meter per minute")
    p.add_argument("--workers", type=int, default=2, help="serve processes to start (>= 1)")
    p.add_argument("--broker", help="broker URL (default: a local Mosquitto)")
    p.add_argument("--db", help="database URL or file (default: a local PostgreSQL)")
    p.add_argument("--prefix", default="mtr")
    p.add_argument("--store-connections", type=int, default=2,
                   help="per worker: transactions in flight (serve --store-connections)")
    p.add_argument("--batch-bytes", type=int, default=BATCH_CAP,
                   help="batch size cap (default: the gateway's); smaller: longer chains")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for all acks")
    p.set_defaults(func=cmd_loadtest)
