"""`ServiceControlApi`: the console's `ControlApi` on the service side, over `ConsolePorts`.

The operations live in one mixin per topic (ops_meters, ops_prepay, ops_config, ops_system,
ops_analytics);
this class only puts them together over the ports the composition root
(gateway/wiring/console.py) hands over. mypy checks it against `ControlApi` where the
composition root serves it, so a declared operation without an implementation is an error.
"""

from __future__ import annotations

from gateway.console.ops_analytics import AnalyticsOps
from gateway.console.ops_config import ConfigOps
from gateway.console.ops_meters import MeterOps
from gateway.console.ops_prepay import PrepayOps
from gateway.console.ops_system import SystemOps
from gateway.console.ports import ConsolePorts


class ServiceControlApi(MeterOps, PrepayOps, ConfigOps, SystemOps, AnalyticsOps):
    """Implements `gateway.console.api.ControlApi` over the ports of one running service."""

    def __init__(self, ports: ConsolePorts) -> None:
        self.ports = ports
