"""The service-side operations over fake ports: no service, no bus, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from board.interface import ClockNotSettable
from core.clock import FakeClock
from gateway.config.loader import GatewayConfig, StorageConfig
from gateway.console.api import ControlError, KeyInfo
from gateway.console.ports import ConsolePorts
from gateway.console.service_api import ServiceControlApi


@dataclass
class Events:
    seen: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def __call__(self, kind: str, meter_id: str | None, data: dict[str, Any],
                 severity: str = "info") -> None:
        self.seen.append((kind, data, severity))


class Board:
    def __init__(self, refusal: ClockNotSettable | None) -> None:
        self.refusal, self.set_to = refusal, None

    def set_clock(self, when: datetime) -> None:
        if self.refusal is not None:
            raise self.refusal
        self.set_to = when


class Restart:
    def __init__(self, running: bool) -> None:
        self.running, self.requested = running, None

    def available(self) -> bool:
        return self.running

    def request(self, delay_s: float) -> None:
        self.requested = delay_s


class Keys:
    def key_ids(self) -> list[KeyInfo]:
        return [KeyInfo("12345678", "wmbus meter flat-3", "flat-3")]


def _api(tmp_path: Path, board: Board, restart: Restart, events: Events) -> ServiceControlApi:
    config = GatewayConfig(source=tmp_path / "site.toml", gateway_id="gw-1", timezone="UTC",
                           storage=StorageConfig(tmp_path / "db.sqlite"), log_level="info",
                           board={}, buses=(), meters=())
    ports = ConsolePorts(config=config, clock=FakeClock(), started_ms=0, store=lambda: None,
                         meters=None, buses=None, meter_keys=Keys(),  # type: ignore[arg-type]
                         events=events, restart=restart, system_time=board,
                         gateway_key=tmp_path / "none.pem")
    return ServiceControlApi(ports)


async def test_a_clock_the_board_cannot_set_is_recorded_with_why(tmp_path: Path) -> None:
    events = Events()
    refusal = ClockNotSettable("not root", "the service may not set the clock")
    api = _api(tmp_path, Board(refusal), Restart(True), events)
    with pytest.raises(ControlError, match="may not set the clock; the request was recorded"):
        await api.set_time(datetime(2030, 1, 1, tzinfo=UTC))
    assert [(k, d["why"], s) for k, d, s in events.seen] == [
        ("clock_set_refused", "not root", "warning")]
    with pytest.raises(ControlError, match="give the zone"):
        await api.set_time(datetime(2030, 1, 1))


async def test_a_settable_clock_is_set_and_recorded(tmp_path: Path) -> None:
    events, board = Events(), Board(None)
    api = _api(tmp_path, board, Restart(True), events)
    await api.set_time(datetime(2030, 1, 1, tzinfo=UTC))
    assert board.set_to == datetime(2030, 1, 1, tzinfo=UTC)
    assert events.seen[0][0] == "clock_set"


async def test_restart_goes_through_its_port(tmp_path: Path) -> None:
    events, restart = Events(), Restart(True)
    api = _api(tmp_path, Board(None), restart, events)
    assert "Restarting" in await api.restart()
    assert restart.requested is not None and events.seen[0][0] == "restart_requested"
    idle = _api(tmp_path, Board(None), Restart(False), Events())
    with pytest.raises(ControlError, match="nothing to restart"):
        await idle.restart()


async def test_missing_components_say_not_available(tmp_path: Path) -> None:
    api = _api(tmp_path, Board(None), Restart(True), Events())
    with pytest.raises(ControlError, match="uplink is not available"):
        await api.uplink_flush()
    with pytest.raises(ControlError, match="log is not available"):
        await api.log_lines(None, 5)
    with pytest.raises(ControlError, match="storage closed"):
        await api.status()
    assert [k.key_id for k in await api.keys_show()] == ["12345678"]  # no gateway key file
