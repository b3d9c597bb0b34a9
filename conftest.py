"""Plugins for every test under tests/ and hil/ (the harness itself: tests/harness/).

- tests/harness/lingering.py: a test that leaves asyncio tasks or timer handles behind fails.
- tests/harness/broker.py: the one `broker` fixture (a real Mosquitto).

RuntimeWarnings (a coroutine never awaited) and unraisable exceptions are errors
(pyproject.toml `filterwarnings`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `tests.` and `hil.` importable

pytest_plugins = ["tests.harness.lingering", "tests.harness.broker", "pytester"]
