"""`make bench`: runs every bench module in its own process and prints their figures as JSON.

Each module `hil/bench/<name>.py` is run as `python -m hil.bench.<name>` and must print one JSON
object as its last line of output. A bench that fails is reported with its error, not hidden.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

# A bench that has not finished in this time is stuck, not slow.
BENCH_TIMEOUT_S = 900


def run_one(name: str) -> dict[str, object]:
    try:
        done = subprocess.run([sys.executable, "-m", f"hil.bench.{name}"], capture_output=True,
                              text=True, timeout=BENCH_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {BENCH_TIMEOUT_S} s"}
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}", "output": tail}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def main() -> int:
    names = sys.argv[1:] or sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_"))
    results = {name: run_one(name) for name in names}
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
