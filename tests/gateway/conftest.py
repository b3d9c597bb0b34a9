"""Fixtures of the gateway tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.toy_protocol import install_toy


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The toy protocol package on sys.path and its plugin as one more line of `PLUGINS`."""
    yield from install_toy(tmp_path, monkeypatch)
