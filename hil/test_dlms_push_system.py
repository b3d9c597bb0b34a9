"""Whole system: the real `gateway run` listens to a simulated HAN port (dlms_push, HDLC,
2400 8N1) where a Kaifa meter pushes general-glo-ciphered, segmented data-notifications: the
corpus's published values are stored exactly, a replayed push is refused (counted, stored
once), garbage and a bad FCS do not stop the port.

The pushed lists are the corpus's plaintext Kaifa pushes (tests/corpus/dlms, published values
1320 W and 0.601 kW); the corpus has no ciphered push with a published key, so the simulator
seals them with this test's own key, as a utility's meter would with the customer's key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from drivers.dlms.hdlc import decode_frame
from drivers.dlms.keys import DlmsKeyFile
from drivers.dlms.push_sim import PushMeterSim, PushSim
from drivers.dlms.security import Keys
from storage.store import Store
from tests.drivers.dlms.corpus import entries
from tests.harness.eventually import eventually
from tests.harness.gateway_process import GatewayProcess

KEYS = Keys(bytes.fromhex("5A1C3E9B0D7F24688A13C5E7092B4D6F"),
            bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF"))
TITLE = b"KFM\x10\x00\x00\x42\x17"
DEADLINE_S = 60.0  # bounds a broken wait, not a speed requirement


def _plain(name: str) -> bytes:
    entry = next(e for e in entries() if e["name"] == name)
    raw = bytes.fromhex(entry["frames_hex"][0])
    return (decode_frame(raw)[0].information if raw[:1] == b"\x7e" else raw)[3:]


README = _plain("AmsToMqttBridge/Kaifa/readme-sample")  # published: 1-0:1.7.0.255 1320 W
LIST1 = _plain("AmsToMqttBridge/Kaifa/obisdata-list1")  # published: 0.601 kW


def _config(tmp_path: Path, port: str) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(
        f'gateway_id = "gw-han"\n[storage]\npath = "{tmp_path / "gw.db"}"\n'
        f'commit_interval_ms = 200\n[board]\nstate_dir = "{tmp_path / "board"}"\n'
        f'[[bus]]\nid = "han"\nport = "{port}"\nbaudrate = 2400\npush_framing = "hdlc"\n'
        f'[[meter]]\nid = "flat-3"\nbus = "han"\nprotocol = "dlms_push"\n'
        f'system_title = "{TITLE.hex().upper()}"\nprofile = "kaifa"\n')
    return config


def _powers(db: Path) -> list[Decimal]:
    """The stored active power of every push, oldest first."""
    store = Store.open(db, create=False)
    try:
        readings = store.last_readings("flat-3", 1000)
    finally:
        store.close()
    return [Decimal(str(v.value)) for r in reversed(readings) for v in r.values
            if v.quantity == "active_power"]


def test_an_encrypted_han_push_is_stored_exactly_and_a_replay_refused(tmp_path: Path) -> None:
    keys = DlmsKeyFile(tmp_path / "dlms-keys")  # beside the database: the default place
    keys.add("flat-3", "encryption", KEYS.encryption.hex())
    keys.add("flat-3", "authentication", KEYS.authentication.hex())
    # after the lead (LIST1 until the gateway stored one): README, garbage, a LIST1 with a
    # bad FCS, the README push again byte for byte, LIST1
    script: list[bytes | str] = [README, "garbage", "bad_fcs", LIST1, "replay", LIST1]
    with PushSim(script, PushMeterSim(TITLE, KEYS), interval_s=0.3, segment_bytes=24,
                 lead=LIST1) as sim:
        config = _config(tmp_path, sim.port_path)
        with GatewayProcess(config, tmp_path / "gw.log") as gateway:
            gateway.wait_for_readings(tmp_path / "gw.db", ["flat-3"], at_least=1,
                                      deadline_s=DEADLINE_S)
            sim.play()

            def script_stored() -> bool:
                gateway.assert_running()
                powers = _powers(tmp_path / "gw.db")
                return powers[-1:] == [Decimal("601")] and Decimal("1320") in powers

            eventually(script_stored, DEADLINE_S, "the script's pushes stored")
            assert gateway.stop() == 0, gateway.log_tail()
        powers = _powers(tmp_path / "gw.db")
        assert powers.count(Decimal("1320")) == 1  # the replayed push was not stored again
        assert powers[-2:] == [Decimal("1320"), Decimal("601")]  # 1320 W; 0.601 kW = 601 W
        assert set(powers) == {Decimal("1320"), Decimal("601")}
        log = (tmp_path / "gw.log").read_text(errors="replace")
        assert '"event":"dlms_push_refused"' in log and '"counter":"replays"' in log
        # a restart keeps refusing: the last push (LIST1) again, then a fresh README
        with GatewayProcess(config, tmp_path / "gw2.log") as gateway:

            def listening() -> bool:
                gateway.assert_running()
                return '"event":"dlms_push_listening"' in (tmp_path / "gw2.log").read_text(
                    errors="replace")

            eventually(listening, DEADLINE_S, "the gateway listening on the port")
            sim.play(["replay", README])

            def fresh_stored() -> bool:
                gateway.assert_running()
                return _powers(tmp_path / "gw.db").count(Decimal("1320")) == 2

            eventually(fresh_stored, DEADLINE_S, "the push after the replay stored")
            assert gateway.stop() == 0, gateway.log_tail()
    after = _powers(tmp_path / "gw.db")
    assert after == [*powers, Decimal("1320")]  # the replayed LIST1 was not stored
    log = (tmp_path / "gw2.log").read_text(errors="replace")
    assert '"counter":"replays"' in log
