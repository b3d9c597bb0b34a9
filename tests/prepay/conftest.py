"""Fixtures for the prepay tests (the rig itself lives in rig.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prepay.rig import Rig, site_config


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, site_config())
    yield r
    r.store.close()


@pytest.fixture
def button_rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, site_config(reconnect="button", button_input="button"))
    yield r
    r.store.close()
