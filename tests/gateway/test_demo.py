"""`gateway demo` shows the whole job: every kind of meter read, the prepayment story played
through the head-end and the USB stick, batches acked; told in plain lines when stdout is no
terminal. Waits are for the state (the demo's own database), with generous deadlines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.harness.eventually import eventually
from tests.harness.gateway_process import query, stored_counts
from uplink.localbroker import MOSQUITTO

GATEWAY = Path(sys.executable).with_name("gateway")
# The story takes about a minute and a half on an idle machine; this bounds a broken one.
STORY_DEADLINE_S = 300.0
STOP_TIMEOUT_S = 60.0
RUN_DOWN, STEADY = "shop-01", "flat-11"
SAID = (f"{RUN_DOWN} low_credit", f"{RUN_DOWN} relay_opened", "voucher redeemed",
        f"{RUN_DOWN} relay_closed", "uplink connected", "uplink last acked batch",
        "server credit.topup meter=flat-11 amount=20.00: ok", "water-31", "heat-32",
        "flat-21-gas", "tower-e650", "incomer")


def meter_kinds(site: dict[str, Any]) -> dict[str, str]:
    """meter id -> "protocol/transport" from the demo's written config (sub-meters included)."""
    transport = {b["id"]: b.get("kind", "serial") for b in site["bus"]}
    kinds = {}
    for meter in site["meter"]:
        kinds[meter["id"]] = f"{meter['protocol']}/{transport[meter['bus']]}"
        for sub in meter.get("mbus_meters", {}).values():
            kinds[sub] = f"{meter['protocol']} sub-meter"
        if "commodity" in meter:
            kinds[meter["id"]] += f" {meter['commodity']}"
    return kinds


def read_site(path: Path) -> dict[str, Any] | None:
    """The written config once it is complete (the service is loading it then)."""
    text = path.read_text() if path.exists() else ""
    return tomllib.loads(text) if "[console]" in text else None


def events(db: Path, meter: str) -> list[tuple[int, str, dict[str, Any]]]:
    rows = query(db, "SELECT id, kind, data FROM events WHERE meter_id = ? ORDER BY id", (meter,))
    return [(int(i), str(k), json.loads(d)) for i, k, d in rows]


def first(evs: list[tuple[int, str, dict[str, Any]]], kind: str, after: int = 0,
          **data: str) -> int | None:
    return next((i for i, k, d in evs if k == kind and i > after
                 and all(d.get(key) == value for key, value in data.items())), None)


def story_told(db: Path) -> bool:
    """low credit, then the relay opens for lack of credit, a voucher, the relay closes."""
    evs = events(db, RUN_DOWN)
    low = first(evs, "low_credit")
    opened = low and first(evs, "relay_opened", low, reason="credit_exhausted")
    redeemed = opened and first(evs, "voucher_redeemed", opened)
    return bool(redeemed and first(evs, "relay_closed", opened, reason="topup"))


def acked_batches(db: Path) -> int:
    return int(query(db, "SELECT count(*) FROM uplink_batches WHERE acked_ms IS NOT NULL")[0][0])


def everything(db: Path, kinds: dict[str, str]) -> bool:
    counts = stored_counts(db)
    return (all(counts.get(meter, 0) >= 2 for meter in kinds) and story_told(db)
            and acked_batches(db) >= 3)


@pytest.mark.broker
def test_demo_shows_the_whole_job(tmp_path: Path) -> None:
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (make debian-deps installs it)")
    state, out_path = tmp_path / "demo", tmp_path / "demo.out"
    with out_path.open("w") as out, (tmp_path / "demo.err").open("w") as err:
        proc = subprocess.Popen([str(GATEWAY), "demo", "--state", str(state),
                                 "--for", str(int(STORY_DEADLINE_S * 2))], stdout=out, stderr=err)
        try:
            site = eventually(lambda: read_site(state / "site.toml"), 60,
                              "the demo's config written")
            kinds = meter_kinds(site)
            db = state / "gateway.db"
            eventually(lambda: db.exists() and everything(db, kinds), STORY_DEADLINE_S,
                       "every meter read, the story told, batches acked")
            # the view says it a moment after the store has it
            eventually(lambda: all(w in out_path.read_text() for w in SAID), 60,
                       "the story said in plain lines")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(STOP_TIMEOUT_S) == 0, (tmp_path / "demo.err").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # the site has every kind of meter the issue lists, and every one of them was read
    assert set(kinds.values()) >= {"modbus/serial", "modbus/tcp", "iec62056/serial",
                                   "dsmr/serial", "dsmr sub-meter", "wmbus/serial water",
                                   "wmbus/serial heat"}
    topups = query(db, "SELECT meter_id, count(*) FROM ledger WHERE kind = 'topup' "
                       "AND ikey LIKE 'topup:demo-%' GROUP BY meter_id")
    assert dict(topups) == {RUN_DOWN: 1, STEADY: 1}  # each server top-up credited once
    results = query(state / "headend.db", "SELECT body FROM records WHERE kind = 'cmd_result'")
    ops = [(json.loads(b)["op"], json.loads(b)["ok"]) for (b,) in results]
    assert ops.count(("credit.topup", True)) == 2, ops
    lines = out_path.read_text().splitlines()
    assert lines[0] == f"config: {state / 'site.toml'}  (copy and edit it, then: gateway demo " \
                       f"--config COPY)"


@pytest.mark.broker
def test_an_edited_config_runs_with_this_runs_simulators(tmp_path: Path) -> None:
    """The written config, copied and edited (a meter renamed),
    runs with `--config`: the simulators' ports are those of the new run."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto binary not installed (make debian-deps installs it)")
    first_state, state = tmp_path / "first", tmp_path / "second"
    subprocess.run([str(GATEWAY), "demo", "--state", str(first_state), "--for", "1"],
                   check=True, capture_output=True, timeout=120)
    text = (first_state / "site.toml").read_text()
    edited = tmp_path / "mine.toml"
    edited.write_text(text.replace('id = "lifts"', 'id = "lift-a"'))
    out = subprocess.run([str(GATEWAY), "demo", "--state", str(state), "--config", str(edited),
                          "--for", "30"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[0] == f"config: {edited}"
    counts = stored_counts(state / "gateway.db")
    assert counts.get("lift-a", 0) >= 1 and "lifts" not in counts, counts
    assert counts.get("water-31", 0) >= 1, counts  # a pushed meter on the new run's dongle


def test_an_edited_config_with_a_mistake_is_one_line_naming_the_key(tmp_path: Path) -> None:
    edited = tmp_path / "mine.toml"
    edited.write_text('gateway_id = "gw-demo"\nnonsense = 1\n[storage]\npath = "x.db"\n')
    out = subprocess.run([str(GATEWAY), "demo", "--state", str(tmp_path / "state"), "--broker",
                          "mqtt://127.0.0.1:1", "--config", str(edited), "--for", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stdout.splitlines()[0] == f"config: {edited}"
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"gateway demo: {edited}:") and "nonsense" in line, line
