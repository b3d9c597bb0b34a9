"""Targets, the project's error tree, crash classification, the fuzz loop and shrinking."""

from __future__ import annotations

import gc
import importlib
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from board.interface import BoardError
from core.numbers import OutOfRange
from drivers.errors import DriverError
from gateway.config.loader import ConfigError
from prepay.errors import PrepayError
from storage.errors import StorageError
from tests.fuzz.mutate import Mutator
from uplink.errors import UplinkError

ROOT: Final = Path(__file__).resolve().parents[2]
HARNESS_DIR: Final = Path(__file__).resolve().parent


def _project_errors() -> tuple[type[BaseException], ...]:
    """The roots of the project's exception tree (docs/architecture.md, "Exceptions"), with
    core.errors.MeterGatewayError (the one root above them) where the tree has it."""
    roots: list[type[BaseException]] = [
        DriverError, StorageError, UplinkError, PrepayError, ConfigError, BoardError, OutOfRange]
    try:
        common = importlib.import_module("core.errors").MeterGatewayError
    except (ImportError, AttributeError):
        return tuple(roots)
    return (common, *roots)


PROJECT_ERRORS: Final = _project_errors()
TIMEOUT_S: Final = float(os.environ.get("FUZZ_TIMEOUT_S", "2"))
MAX_CRASHES_PER_TARGET: Final = 40
MAX_POOL: Final = 4000
KEEP_ANY: Final = 0.01
TRACE_EVERY: Final = 8  # one input in 8 runs under the call-edge tracer
SHRINK_EXECS: Final = 4000
SHRINK_SECONDS: Final = 30.0
HEX_LIMIT: Final = 4096  # reproducer hex is cut beyond this many bytes (the file keeps all)


class InputTimeout(BaseException):
    """One input ran longer than TIMEOUT_S (a BaseException so no parser swallows it)."""


class InvariantViolation(Exception):
    """A parser accepted input but returned something the rest of the gateway cannot use."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Target:
    """A parser reachable from outside: `run(data)` feeds it one fuzz input."""

    name: str
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes], object]
    refusals: tuple[type[BaseException], ...] = ()  # documented refusals besides the tree
    tokens: Sequence[bytes] = ()
    protect: int = 0  # header bytes (selectors, fix-up flags) mutated only rarely
    weight: float = 1.0
    wire: Callable[[bytes], bytes] | None = None  # the bytes the parser saw, for reports
    setup: Callable[[], None] | None = None


@dataclass
class Crash:
    signature: str
    exception: str
    message: str
    where: str
    data: bytes
    count: int = 1


@dataclass
class TargetResult:
    name: str
    inputs: int = 0
    seconds: float = 0.0
    slowest_ms: float = 0.0
    slowest_input: bytes = b""
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    crashes: dict[str, Crash] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    edges: set[tuple[int, int, int]] = field(default_factory=set)


def rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _on_alarm(signum: int, frame: Any) -> None:
    raise InputTimeout(f"input ran longer than {TIMEOUT_S} s")


def _where(exc: BaseException) -> str:
    """The innermost frame outside this harness: where the bad exception was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if not f.filename.startswith(str(HARNESS_DIR))] or frames
    if not inside:
        return "?"
    frame = inside[-1]
    name = frame.filename
    name = os.path.relpath(name, ROOT) if name.startswith(str(ROOT)) else "/".join(
        Path(name).parts[-3:])
    return f"{name}:{frame.lineno} in {frame.name}"


def classify(target: Target, exc: BaseException) -> tuple[str, Crash | None]:
    """(outcome name, crash or None) for an exception raised by `target.run`."""
    if isinstance(exc, PROJECT_ERRORS + target.refusals) and not isinstance(exc, InputTimeout):
        return type(exc).__name__, None
    where = _where(exc)
    name = type(exc).__qualname__
    if isinstance(exc, InvariantViolation):  # one signature per kind of violation and target
        where = f"{target.name}: {exc.kind}"
    crash = Crash(f"{name} @ {where}", name, str(exc)[:300], where, b"")
    return "crash", crash


class CallEdges:
    """Call-site coverage of one traced input: (callee, caller, caller line) of every call.

    Only "call" events reach it (it returns None, so no line tracing): cheap enough to trace
    one input in TRACE_EVERY and keep those that reach a call site never seen before.
    """

    def __init__(self) -> None:
        self.edges: set[tuple[int, int, int]] = set()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        back = frame.f_back
        if back is not None:
            self.edges.add((id(frame.f_code), id(back.f_code), back.f_lineno))


def execute(target: Target, data: bytes, tracer: CallEdges | None = None,
            ) -> tuple[str, Crash | None]:
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    if tracer is not None:
        sys.settrace(tracer)
    try:
        outcome = target.run(data)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # every other escape is judged by classify
        return classify(target, exc)
    finally:
        sys.settrace(None)
        signal.setitimer(signal.ITIMER_REAL, 0)
    return (outcome if isinstance(outcome, str) else "ok"), None


def shrink(target: Target, data: bytes, signature: str) -> bytes:
    """Delete chunks (halves down to single bytes) while the same crash still happens."""
    best, execs, deadline = data, 0, time.monotonic() + SHRINK_SECONDS
    chunk = max(len(best) // 2, 1)
    while chunk >= 1 and execs < SHRINK_EXECS and time.monotonic() < deadline:
        pos, progressed = 0, False
        while pos < len(best) and execs < SHRINK_EXECS and time.monotonic() < deadline:
            candidate = best[:pos] + best[pos + chunk:]
            execs += 1
            _, crash = execute(target, candidate)
            if crash is not None and crash.signature == signature:
                best, progressed = candidate, True
            else:
                pos += chunk
        if not progressed:
            chunk //= 2
    return best


class Runner:
    """Runs one target for `inputs` inputs: seeds first, then mutations of the growing pool."""

    def __init__(self, target: Target, seed: int) -> None:
        self.target = target
        self.rng = random.Random(f"{seed}:{target.name}")
        self.result = TargetResult(target.name)

    def run(self, inputs: int) -> TargetResult:
        res, target = self.result, self.target
        if target.setup is not None:
            target.setup()
        seeds = [s for s in target.seeds() if len(s) >= target.protect] or [bytes(target.protect)]
        pool = list(seeds)
        mutator = Mutator(self.rng, pool, target.tokens, target.protect)
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        gc.collect()
        res.rss_start_kb = rss_kb()
        started = time.perf_counter()
        try:
            for index in range(inputs):
                data = seeds[index] if index < len(seeds) else mutator.mutate(
                    self.rng.choice(pool))
                self._one(data, pool)
        finally:
            res.seconds = time.perf_counter() - started
            signal.signal(signal.SIGALRM, previous)
        gc.collect()
        res.rss_end_kb = rss_kb()
        for crash in res.crashes.values():
            crash.data = shrink(target, crash.data, crash.signature)
        return res

    def _one(self, data: bytes, pool: list[bytes]) -> None:
        res = self.result
        tracer = CallEdges() if res.inputs % TRACE_EVERY == 0 else None
        t0 = time.perf_counter()
        outcome, crash = execute(self.target, data, tracer)
        elapsed = (time.perf_counter() - t0) * 1000
        res.inputs += 1
        if tracer is None and elapsed > res.slowest_ms:  # traced runs are slower: not counted
            res.slowest_ms, res.slowest_input = elapsed, data
        new_edges = tracer.edges - res.edges if tracer is not None else set()
        res.edges |= new_edges
        # new call sites, a new kind of answer, and now and then any input: kept to mutate
        fresh = outcome not in res.outcomes
        keep = new_edges or fresh or self.rng.random() < KEEP_ANY
        if keep and len(pool) < MAX_POOL:
            pool.append(data)
        if fresh:
            res.outcomes[outcome] = 0
        res.outcomes[outcome] += 1
        if crash is not None:
            self._record(crash, data, pool)

    def _record(self, crash: Crash, data: bytes, pool: list[bytes]) -> None:
        known = self.result.crashes.get(crash.signature)
        if known is not None:
            known.count += 1
            if len(data) < len(known.data):
                known.data = data
            return
        if len(self.result.crashes) < MAX_CRASHES_PER_TARGET:
            crash.data = data
            self.result.crashes[crash.signature] = crash
            if len(pool) < MAX_POOL:
                pool.append(data)


def crash_report(target: Target, crash: Crash) -> dict[str, Any]:
    report: dict[str, Any] = {
        "exception": crash.exception, "where": crash.where, "message": crash.message,
        "count": crash.count, "size": len(crash.data), "input_hex": crash.data[:HEX_LIMIT].hex(),
    }
    if target.wire is not None:
        try:
            report["wire_hex"] = target.wire(crash.data)[:HEX_LIMIT].hex()
        except Exception as exc:  # the report must not fail on a reproducer
            report["wire_hex"] = f"(wire failed: {type(exc).__name__})"
    return report


def result_report(target: Target, res: TargetResult) -> dict[str, Any]:
    return {
        "inputs": res.inputs,
        "seconds": round(res.seconds, 1),
        "execs_per_s": round(res.inputs / res.seconds) if res.seconds else 0,
        "crashes": len(res.crashes),
        "crash_list": [crash_report(target, c) for c in res.crashes.values()],
        "slowest_ms": round(res.slowest_ms, 2),
        "slowest_input_hex": res.slowest_input[:256].hex(),
        "slowest_input_size": len(res.slowest_input),
        "rss_start_kb": res.rss_start_kb,
        "rss_growth_kb": res.rss_end_kb - res.rss_start_kb,
        "call_edges": len(res.edges),
        "outcomes": dict(sorted(res.outcomes.items(), key=lambda kv: -kv[1])[:12]),
    }


def write_reproducers(directory: Path, target: Target, res: TargetResult) -> None:
    for number, crash in enumerate(res.crashes.values(), start=1):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{target.name}-{number:02d}.bin").write_bytes(crash.data)
