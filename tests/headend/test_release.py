"""The update bundle's manifest (uplink/release.py) and `gateway-headend release publish`."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from tests.gateway.remote.wheels import make_bundle, make_wheel
from uplink.cose import sign1
from uplink.headend.cli import main
from uplink.keys import create_private_key
from uplink.release import (
    MANIFEST_FILE,
    BundleError,
    check_replaces,
    check_wheels,
    parse_version,
    verify_manifest,
)

RELEASE = Ed25519PrivateKey.generate()


def test_publish_signs_every_wheel_with_the_release_key(tmp_path: Path, capsys) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    make_wheel(bundle, "0.2.0")
    make_wheel(bundle, "3.1", dist="cbor2")
    key = create_private_key(tmp_path / "release.pem")
    assert main(["release", "publish", str(bundle), "--key", str(tmp_path / "release.pem"),
                 "--min-version", "0.1.0"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == "0.2.0" and summary["wheels"] == 2
    manifest = verify_manifest((bundle / MANIFEST_FILE).read_bytes(), key.public_key())
    assert manifest.version == "0.2.0" and manifest.min_version == "0.1.0"
    assert sorted(w.file for w in manifest.wheels) == sorted(p.name for p in bundle.glob("*.whl"))
    check_wheels(manifest, bundle)


def test_publish_without_a_gateway_wheel_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    make_wheel(tmp_path / "b", "1.0", dist="cbor2")
    create_private_key(tmp_path / "k.pem")
    assert main(["release", "publish", str(tmp_path / "b"), "--key", str(tmp_path / "k.pem")]) == 2


def test_another_key_is_bad_signature(tmp_path: Path) -> None:
    make_bundle(tmp_path, "0.2.0", Ed25519PrivateKey.generate())
    with pytest.raises(BundleError) as err:
        verify_manifest((tmp_path / MANIFEST_FILE).read_bytes(), RELEASE.public_key())
    assert err.value.reason == "bad_signature"


def test_a_changed_or_short_wheel_is_refused(tmp_path: Path) -> None:
    make_bundle(tmp_path, "0.2.0", RELEASE)
    manifest = verify_manifest((tmp_path / MANIFEST_FILE).read_bytes(), RELEASE.public_key())
    wheel = tmp_path / manifest.wheels[0].file
    data = wheel.read_bytes()
    wheel.write_bytes(data[:-10])
    with pytest.raises(BundleError) as err:
        check_wheels(manifest, tmp_path)
    assert err.value.reason == "truncated"
    wheel.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(BundleError) as err:
        check_wheels(manifest, tmp_path)
    assert err.value.reason == "wrong_hash"


@pytest.mark.parametrize(("running", "floor", "reason"), [
    ("0.3.0", None, "downgrade_refused"), ("0.0.9", None, "too_old_to_update"),
    ("0.2.0", None, "unchanged"), ("0.1.5", "0.2.1", "downgrade_refused")])
def test_versions_it_may_not_replace(tmp_path: Path, running: str, floor: str | None,
                                     reason: str) -> None:
    make_bundle(tmp_path, "0.2.0", RELEASE, min_version="0.1.0")
    manifest = verify_manifest((tmp_path / MANIFEST_FILE).read_bytes(), RELEASE.public_key())
    if running == "0.3.0":
        floor = "0.3.0"  # the running release's own minimum
    with pytest.raises(BundleError) as err:
        check_replaces(manifest, running, floor)
    assert err.value.reason == reason


def test_an_upgrade_is_allowed(tmp_path: Path) -> None:
    make_bundle(tmp_path, "0.2.0", RELEASE, min_version="0.1.0")
    manifest = verify_manifest((tmp_path / MANIFEST_FILE).read_bytes(), RELEASE.public_key())
    check_replaces(manifest, "0.1.0", "0.1.0")
    assert parse_version("0.2") == (0, 2, 0, 0) < parse_version("0.10.0")


@given(st.binary(max_size=300))
def test_any_bytes_are_a_manifest_or_bundle_error(data: bytes) -> None:
    for blob in (data, sign1(data, RELEASE, b"k")):
        try:
            verify_manifest(blob, RELEASE.public_key())
        except BundleError as exc:
            assert exc.reason in {"bad_signature", "bad_manifest"}


@given(st.dictionaries(st.sampled_from(["format", "package", "version", "min_version",
                                        "created_ms", "wheels"]),
                       st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers()),
                                 st.just("meter-gateway"), st.just(1))))
def test_any_signed_map_is_a_manifest_or_bundle_error(fields: dict) -> None:
    try:
        verify_manifest(sign1(cbor2.dumps(fields), RELEASE, b"k"), RELEASE.public_key())
    except BundleError as exc:
        assert exc.reason == "bad_manifest"
