"""Independent check of the wire format: a gateway batch verified and read by pycose."""

import zlib

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pycose.headers import KID
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

from storage import batches
from storage.records import ReadingSet, StoredValue
from storage.store import Store
from uplink.batcher import Batcher


def _decode(data: bytes) -> Sign1Message:
    # pycose 1.1 expects cbor2 < 6, which decoded tag contents as lists (cbor2 6 gives tuples
    # and frozendicts); unwrap tag 18 here and let pycose do everything else, signature included.
    tagged = cbor2.loads(data)
    assert tagged.tag == 18
    protected, unprotected, payload, signature = tagged.value
    msg = Sign1Message.from_cose_obj([protected, dict(unprotected), payload, signature], True)
    assert isinstance(msg, Sign1Message)
    return msg


def _pycose_key(key: Ed25519PrivateKey) -> OKPKey:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return OKPKey(crv=Ed25519, x=raw)


def test_gateway_batch_verifies_with_pycose(store: Store, gw_key: Ed25519PrivateKey) -> None:
    from decimal import Decimal
    store.add_readings([ReadingSet("m1", 1_700_000_000_000, (
        StoredValue("import_active_energy", Decimal("12.345"), "kWh"),))])
    for compress in (False, True):
        store.add_event("e", meter_id=None, data={}, ts_ms=1)
        built = Batcher(store, "gw-9", gw_key, compress=compress).build(65536)
        assert built is not None
        msg = _decode(built.batch.data)
        msg.key = _pycose_key(gw_key)
        assert msg.verify_signature()
        assert msg.phdr_encoded == cbor2.dumps({1: -8})
        assert msg.uhdr[KID] == b"gw-9"
        assert msg.payload is not None
        payload = cbor2.loads(msg.payload)
        assert payload["gw"] == "gw-9" and payload["v"] == 1
        recs = payload["recs"]
        if compress:
            recs = cbor2.loads(zlib.decompress(recs, -15))
        assert recs and all({"k", "id", "t"} <= set(r) for r in recs)
    with store.transaction() as tx:
        head, _sha = batches.chain_head(tx)
    assert head == 2


def test_pycose_rejects_tampered_batch(store: Store, gw_key: Ed25519PrivateKey) -> None:
    store.add_event("e", meter_id=None, data={"x": 1}, ts_ms=1)
    built = Batcher(store, "gw-9", gw_key, compress=False).build(65536)
    assert built is not None
    tampered = bytearray(built.batch.data)
    tampered[-70] ^= 0x01  # a payload byte just before the signature
    msg = _decode(bytes(tampered))
    msg.key = _pycose_key(gw_key)
    assert not msg.verify_signature()
