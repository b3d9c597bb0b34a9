"""Imports every module of the project and prints its exception classes as JSON.

Run in a fresh interpreter (`python -m tests.core.exception_scan` from the repository root) by
tests/core/test_errors.py: inside pytest, `--import-mode=importlib` registers test packages that
have an `__init__.py` (tests/prepay, tests/storage) under the real packages' names, so a walk
of `sys.modules` there would see the test package instead of the project's.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
from pathlib import Path

PACKAGES = ("core", "gateway", "drivers", "prepay", "storage", "uplink", "board")
ROOT = Path(__file__).resolve().parents[2]


def scan() -> dict[str, dict[str, object]]:
    """{qualified class name: {"root": under MeterGatewayError, "name": class name}}."""
    sys.path.insert(0, str(ROOT))
    from core.errors import MeterGatewayError

    found: dict[str, dict[str, object]] = {}
    for package_name in PACKAGES:
        names = [package_name] + [
            info.name for info in pkgutil.walk_packages([str(ROOT / package_name)],
                                                        f"{package_name}.")
            if not info.name.endswith(".__main__")]  # running one is running the program
        for name in names:
            module = importlib.import_module(name)
            assert Path(module.__file__ or "").resolve().is_relative_to(ROOT / package_name)
            for obj in vars(module).values():
                if (inspect.isclass(obj) and issubclass(obj, BaseException)
                        and obj.__module__ == name):
                    found[f"{name}.{obj.__qualname__}"] = {
                        "root": issubclass(obj, MeterGatewayError), "name": obj.__name__}
    return found


if __name__ == "__main__":
    json.dump(scan(), sys.stdout)
