"""Prepay drives its declared RelayIO: a failing relay keeps the decision, the board adapter maps
board failures to prepay's RelayIOError."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from board.interface import OutputSpec
from board.simulated import SimulatedBoard
from gateway.wiring.prepay import BoardRelays
from prepay.engine import PrepayEngine
from prepay.errors import PrepayError, RelayIOError
from storage import ledger
from tests.prepay.rig import Rig, site_config


class StuckRelays:
    """Relays whose driver fails (a GPIO line lost); inputs read as inactive."""

    def __init__(self) -> None:
        self.driven: dict[str, bool] = {}

    def drive(self, output: str, on: bool) -> None:
        raise RelayIOError(f"output {output!r}: line lost")

    def commanded(self, output: str) -> bool | None:
        return self.driven.get(output)

    def input_active(self, name: str) -> bool:
        raise RelayIOError(f"input {name!r}: line lost")


def test_a_failing_relay_keeps_the_decision_and_is_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path, site_config())
    rig.engine = PrepayEngine(rig.settings, rig.store, StuckRelays(), lambda: rig.now)
    with caplog.at_level(logging.ERROR, logger="prepay.engine"):
        rig.engine.restore_relays()
    assert [r.message for r in caplog.records].count("relay_drive_failed") == 3  # each meter
    for meter in rig.settings.meters:  # the decision is stored: the next tick drives again
        assert "relay_restored" in rig.kinds(meter)
        assert ledger.relay_state(rig.store.db.conn, meter) is not None


def test_the_board_adapter_maps_board_errors(tmp_path: Path) -> None:
    board = SimulatedBoard(tmp_path)
    board.declare([OutputSpec("relay-1")], [])
    relays = BoardRelays(board)
    relays.drive("relay-1", True)
    assert relays.commanded("relay-1") is True and board.output_state("relay-1") is True
    for call in (lambda: relays.drive("nope", True), lambda: relays.commanded("nope"),
                 lambda: relays.input_active("nope")):
        with pytest.raises(RelayIOError, match="nope") as caught:
            call()
        assert isinstance(caught.value, PrepayError)
