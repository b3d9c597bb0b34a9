"""The web page in a real headless Chromium (chromedriver, W3C WebDriver): login, the fleet,
a gateway's meters with credit and relay, a meter's chart, scope refused; screenshots are
decoded and checked for the chart's colour, not only the HTML."""

import hashlib
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.harness.eventually import eventually
from tests.headend.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    Browser,
    count_colour,
    decode_png,
    distinct_colours,
)
from uplink.codec import ZERO_HASH, WireRecord, encode_batch_payload, reading_fields, record_item
from uplink.cose import sign1
from uplink.headend import enrol
from uplink.headend.db import open_store, record_status
from uplink.headend.enrol import parse_public_pem
from uplink.headend.fleet import FleetSpec, build_fleet
from uplink.headend.verify import verify_batch
from uplink.headend.web.app import make_server
from uplink.headend.web.auth import add_account
from uplink.headend.web.pages import CHART_COLOUR
from uplink.keys import public_pem

T0 = 1_767_225_600_000
RED = tuple(int(CHART_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
# A health record as the gateway sends it (docs/remote.md), fields as on the wire
HEALTH = {"uptime_s": 3600, "version": {"gateway": "0.1.0", "python": "3.11.7"},
          "config": {"version": 7, "sha256": "dc5996c5e3c5" + "0" * 52}, "cpu_ms": 1400,
          "rss_bytes": 52_019_200, "disk_free_bytes": 8_000_000_000, "temperature_mc": 48312,
          "written_bytes": 540_672, "written_bytes_per_h": 2_000_000, "outbox": 1,
          "clock_synced": True, "components": {"poll-rs485-1": {
              "failures": 2, "last_error": "OSError: [Errno 5] EIO", "down": False}},
          "buses": {"rs485-1": {"protocol": "modbus", "counters": {"ok": 4, "timeouts": 1}}}}


def shop_batch(key: Ed25519PrivateKey) -> bytes:
    """A prepaid site: readings of one meter, a ledger entry and a relay event."""
    recs = [WireRecord("reading", i + 1, T0 + i * 60_000, reading_fields(
        "pp1", [("import_active_energy", Decimal(1000 + i * i).scaleb(-2))])) for i in range(30)]
    recs.append(WireRecord("ledger", 31, T0, {"b": {"meter_id": "pp1", "kind": "topup",
                                                    "balance_after": 123_450}}))
    recs.append(WireRecord("event", 32, T0, {"e": "relay_opened", "s": "warning", "m": "pp1",
                                             "d": {"reason": "no_credit"}}))
    recs.append(WireRecord("health", 33, T0, HEALTH))
    payload = encode_batch_payload("shop", 1, ZERO_HASH, T0 // 1000,
                                   [record_item(r, T0) for r in recs], compress=True)
    return sign1(payload, key, b"shop")


def fill(db: str) -> None:
    store = open_store(db)
    try:
        for sim in build_fleet(FleetSpec(2, 3, 90), processes=1):
            enrol.add(store, sim.gw, sim.public_pem)
            keys = {sim.gw: parse_public_pem(sim.public_pem, sim.gw)}
            for raw in sim.batches:
                assert store.ingest(verify_batch(raw, keys)).status == "stored"
        shop = Ed25519PrivateKey.generate()
        store.ingest(verify_batch(shop_batch(shop), {"shop": shop.public_key()}))
        record_status(store, "sim-00000", "online", int(time.time() * 1000))
        add_account(store, "olga", "correct-horse", "viewer", gateways=["sim-00000", "shop"])
        assert hashlib.sha256(public_pem(shop).encode()).digest()
    finally:
        store.close()


@pytest.fixture
def site(pg_url: str) -> Iterator[str]:
    fill(pg_url)
    server = make_server(pg_url, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium / chromium-driver not installed (make debian-deps installs them)")
    b = Browser(str(tmp_path / "profile"))
    yield b
    b.close()


def login(browser: Browser, site: str, password: str) -> str:
    """Submit the login form; returns the title of the page the browser lands on."""
    browser.go(site + "/gw/sim-00000")
    assert browser.url().endswith("/login")  # not logged in: sent to the login page
    browser.type("#name", "olga")
    browser.type("#password", password)
    form_page = browser.find("#login")
    browser.click("#login")
    # the submission navigates on its own: wait until the form's page is gone
    eventually(lambda: not browser.still_there(form_page), 30, what="login page replaced")
    eventually(browser.loaded, 30, what="the next page loaded")
    return browser.title()


def test_gateway_meters_and_chart_in_chromium(site: str, browser: Browser,
                                              tmp_path: Path) -> None:
    assert login(browser, site, "wrong-password") == "Head-end login"
    assert "wrong password" in browser.source()
    # sim-00001 is outside olga's scope
    assert login(browser, site, "correct-horse") == "Fleet: 2 gateways"
    assert "online" in browser.source()

    browser.go(site + "/gw/sim-00000")
    assert browser.title() == "Gateway sim-00000: 3 meters"
    page = browser.source()
    assert all(f"m000{i}" in page for i in range(3)) and "import_active_energy" in page
    shot = browser.screenshot()
    (tmp_path / "gateway.png").write_bytes(shot)
    assert distinct_colours(decode_png(shot)) > 3  # text and table drawn, not a blank page

    browser.go(site + "/gw/shop")
    page = browser.source()
    assert "12.34" in page and ">open<" in page  # credit 12.3450 in cents half-even, relay open
    assert "7 (dc5996c5e3c5)" in page and "48.3 °C" in page and "EIO" in page  # health
    shot = browser.screenshot()
    (tmp_path / "shop.png").write_bytes(shot)
    assert distinct_colours(decode_png(shot)) > 3

    browser.go(site + "/gw/sim-00000/meter/m0001?q=voltage_l1")
    assert "voltage_l1: 90 values" in browser.source()
    shot = browser.screenshot()
    (tmp_path / "meter.png").write_bytes(shot)  # kept in pytest's temp dir for a look
    image = decode_png(shot)
    assert image[0] >= 760 and count_colour(image, RED) > 500  # the chart line is drawn

    browser.go(site + "/gw/sim-00001")
    assert browser.title() == "Not yours to see"


def test_pages_on_the_sqlite_store(tmp_path: Path) -> None:
    """The same pages over the single-machine store (HTTP here; the browser test is above)."""
    import http.cookiejar
    import urllib.error
    import urllib.parse
    import urllib.request
    db = str(tmp_path / "headend.db")
    fill(db)
    server = make_server(db, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"name": "olga", "password": "correct-horse"}).encode()
        with opener.open(base + "/login", data=form) as resp:
            assert "Fleet: 2 gateways" in resp.read().decode()
        with opener.open(base + "/gw/shop") as resp:
            page = resp.read().decode()
        assert "pp1" in page and "12.34" in page and ">open<" in page
        assert 'id="health"' in page and "Config version" in page and "52.0 MB" in page
        assert "ok 4, timeouts 1" in page
        with opener.open(base + "/gw/sim-00000") as resp:
            assert "No health record yet." in resp.read().decode()
        with opener.open(base + "/gw/sim-00000/meter/m0002?q=current_l1") as resp:
            page = resp.read().decode()
        assert "current_l1: 90 values" in page and f'stroke="{CHART_COLOUR}"' in page
        with opener.open(base + "/anomalies") as resp:
            assert "Chain anomalies" in resp.read().decode()
        store: Any = open_store(db)
        try:
            add_account(store, "mo", "meter-one-only", "viewer", meters=["m0001"])
        finally:
            store.close()
        meter_only = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"name": "mo", "password": "meter-one-only"}).encode()
        meter_only.open(base + "/login", data=form).close()
        with meter_only.open(base + "/gw/sim-00000") as resp:
            page = resp.read().decode()
        assert "m0001" in page and "m0000" not in page and "m0002" not in page
        with pytest.raises(urllib.error.HTTPError) as refused:
            meter_only.open(base + "/gw/sim-00000/meter/m0002")
        assert refused.value.code == 403
        refused.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
