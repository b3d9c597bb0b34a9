"""Every fuzz target, by name."""

from __future__ import annotations

from typing import Final

from tests.fuzz import (
    t_board,
    t_console,
    t_dlms,
    t_dongles,
    t_iec102,
    t_iec62056,
    t_mbus_wired,
    t_modbus,
    t_uplink,
    t_wmbus,
)
from tests.fuzz.harness import Target

TARGETS: Final[dict[str, Target]] = {
    t.name: t
    for module in (t_modbus, t_iec62056, t_wmbus, t_mbus_wired, t_dongles, t_uplink, t_console,
                   t_board, t_dlms, t_iec102)
    for t in module.TARGETS
}


def budget(total: int, names: list[str], per_target: int | None = None) -> dict[str, int]:
    """Inputs per target: `per_target` each, or `total` split by the targets' weights."""
    if per_target is not None:
        return dict.fromkeys(names, per_target)
    weights = {n: TARGETS[n].weight for n in names}
    scale = total / sum(weights.values())
    shares = {n: int(w * scale) for n, w in weights.items()}
    shares[names[0]] += total - sum(shares.values())  # rounding: the total stays exact
    return shares
