#!/usr/bin/env python3
"""A stand-in `mmcli` executable: prints JSON from $FAKE_MMCLI_DIR and logs mutating calls.

-L -J -> modem-list.json; -m N -J -> modem-N.json; -b N -J -> bearer-N.json;
-m N --reset -> appends "reset N" to calls.log. A missing file is ModemManager's error exit.
"""

import os
import sys
from pathlib import Path

root = Path(os.environ["FAKE_MMCLI_DIR"])
args = sys.argv[1:]
if "--reset" in args:
    with open(root / "calls.log", "a") as log:
        log.write(f"reset {args[args.index('-m') + 1]}\n")
    sys.exit(0)
if args[:1] == ["-L"]:
    name = "modem-list.json"
else:
    name = {"-m": "modem", "-b": "bearer"}[args[0]] + f"-{args[1]}.json"
try:
    sys.stdout.write((root / name).read_text())
except FileNotFoundError:
    sys.stderr.write(f"error: couldn't find {name}\n")
    sys.exit(1)
