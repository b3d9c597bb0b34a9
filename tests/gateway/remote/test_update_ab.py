"""The A/B install and its probation with real venvs, real pip (offline, --no-index) and the
installed `gateway` run as a real subprocess; systemd's Restart=always is the loop of
`_systemd_starts` (guard, then the unit's ExecStart), not a real systemd."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.remote.update_ab import (
    InstallError,
    install_version,
    linked_version,
    prune,
    relink,
    switch_to,
)
from gateway.remote.update_trial import (
    PENDING,
    ROLLED_BACK,
    TRIAL,
    begin,
    clear_update_trial,
    confirm,
    guard_start,
    read_update_trial,
    roll_back,
    write_update_trial,
)
from storage.errors import SchemaTooNew
from storage.migrations import MIGRATIONS_DIR, apply_migrations, discover
from tests.gateway.remote.wheels import install_test_version, make_bundle
from uplink.release import MANIFEST_FILE, BundleError, verify_manifest

KEY = Ed25519PrivateKey.generate()
ROOT = Path(__file__).resolve().parents[3]


def _install(prefix: Path, bundles: Path, version: str, crash: bool = False) -> None:
    install_test_version(prefix, bundles, version, crash=crash, key=KEY)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.1.0 (running), 0.2.0 (good) and 0.3.0 (exits 3 at start), each a real venv."""
    base = tmp_path_factory.mktemp("ab")
    prefix = base / "gateway"
    prefix.mkdir()
    for version, crash in (("0.1.0", False), ("0.2.0", False), ("0.3.0", True)):
        _install(prefix, base / "bundles", version, crash)
    return prefix


@pytest.fixture
def prefix(installed: Path) -> Path:
    """0.1.0 current, no previous, no marker."""
    clear_update_trial(installed)
    (installed / "previous").unlink(missing_ok=True)
    relink(installed, "current", "0.1.0")
    return installed


def _run_current(prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(prefix / "current" / "bin" / "gateway")], capture_output=True,
                          text=True, timeout=60, check=False)


def _guard(prefix: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "gateway.remote.update_trial", str(prefix)],
                   env=env, check=True, capture_output=True, timeout=60)


def _systemd_starts(prefix: Path, limit: int = 10) -> list[int]:
    """ExecStartPre (the guard) then ExecStart, again while it exits non-zero."""
    codes: list[int] = []
    while len(codes) < limit:
        _guard(prefix)
        codes.append(_run_current(prefix).returncode)
        if codes[-1] == 0:
            break
    return codes


def test_the_installed_version_runs_from_its_own_venv(prefix: Path) -> None:
    assert _run_current(prefix).stdout.strip() == "0.1.0"
    assert (prefix / "versions" / "0.1.0" / "bin" / "python").exists()


def test_a_good_update_runs_on_trial_then_is_confirmed(prefix: Path) -> None:
    begin(prefix, "0.2.0", 60, database=None)
    assert read_update_trial(prefix).state == PENDING
    assert linked_version(prefix) == "0.2.0" and linked_version(prefix, "previous") == "0.1.0"
    trial = guard_start(prefix)
    assert trial is not None and trial.state == TRIAL and trial.starts == 1
    assert _run_current(prefix).stdout.strip() == "0.2.0"
    confirm(prefix)
    assert read_update_trial(prefix) is None and guard_start(prefix) is None


def test_a_version_that_crashes_at_start_is_rolled_back_by_the_start_counter(
        prefix: Path) -> None:
    begin(prefix, "0.3.0", 60, database=None, max_starts=3)
    codes = _systemd_starts(prefix)
    assert codes == [3, 3, 3, 0]  # three starts of 0.3.0, then 0.1.0 serves
    trial = read_update_trial(prefix)
    assert trial.state == ROLLED_BACK and trial.reason.startswith("crash_loop")
    assert linked_version(prefix) == "0.1.0"
    assert _run_current(prefix).stdout.strip() == "0.1.0"


def test_not_healthy_in_time_switches_back(prefix: Path) -> None:
    trial = begin(prefix, "0.2.0", 60, database=None)
    done = roll_back(prefix, guard_start(prefix) or trial, "not_healthy: uplink")
    assert done.state == ROLLED_BACK and linked_version(prefix) == "0.1.0"
    assert _run_current(prefix).stdout.strip() == "0.1.0"


def test_a_switch_that_never_happened_leaves_the_old_version(prefix: Path) -> None:
    trial = begin(prefix, "0.2.0", 60, database=None)
    relink(prefix, "current", "0.1.0")  # as if stopped between marker and switch
    write_update_trial(prefix, trial)
    assert guard_start(prefix) is None and read_update_trial(prefix) is None


def test_a_wrong_wheel_is_not_installed_and_the_running_version_untouched(
        prefix: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "0.4.0", KEY)
    manifest = verify_manifest((bundle / MANIFEST_FILE).read_bytes(), KEY.public_key())
    wheel = next(bundle.glob("*.whl"))
    data = wheel.read_bytes()
    wheel.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(BundleError) as err:
        install_version(prefix, bundle, manifest)
    assert err.value.reason == "wrong_hash"
    assert not (prefix / "versions" / "0.4.0").exists()
    assert _run_current(prefix).stdout.strip() == "0.1.0"


def test_a_bundle_pip_cannot_install_leaves_no_version(prefix: Path, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "0.5.0", KEY)
    manifest = verify_manifest((bundle / MANIFEST_FILE).read_bytes(), KEY.public_key())
    (bundle / "meter_gateway-0.5.0-py3-none-any.whl").write_bytes(b"")
    with pytest.raises((InstallError, BundleError)):
        install_version(prefix, bundle, manifest)
    assert not (prefix / "versions" / "0.5.0").exists()
    assert linked_version(prefix) == "0.1.0"


def _old_migrations(tmp_path: Path) -> Path:
    """The migration files of the previous release: all but the newest."""
    old = tmp_path / "old_migrations"
    old.mkdir()
    for migration in discover(MIGRATIONS_DIR)[:-1]:
        shutil.copy(migration.path, old / migration.path.name)
    return old


def test_a_rollback_after_a_migration_gives_the_old_version_its_database(
        prefix: Path, tmp_path: Path) -> None:
    old = _old_migrations(tmp_path)
    database = tmp_path / "data" / "gateway.db"
    database.parent.mkdir()
    conn = sqlite3.connect(database, isolation_level=None)
    apply_migrations(conn, database, old)  # the database of the previous release
    conn.close()
    begin(prefix, "0.2.0", 60, database=database)
    conn = sqlite3.connect(database, isolation_level=None)
    assert apply_migrations(conn, database, MIGRATIONS_DIR) == [discover(MIGRATIONS_DIR)[-1]
                                                                .number]  # forward
    conn.close()
    with pytest.raises(SchemaTooNew):  # what the old code would say without the copy
        apply_migrations(sqlite3.connect(database, isolation_level=None), database, old)
    done = roll_back(prefix, guard_start(prefix), "not_healthy: uplink")
    assert "database restored" in (done.reason or "")
    conn = sqlite3.connect(database, isolation_level=None)
    assert apply_migrations(conn, database, old) == []  # the old code opens it
    conn.close()
    assert (database.parent / "update_backup" / "rolled-back-0.2.0.db").exists()


def test_a_rollback_without_a_migration_keeps_the_live_database(
        prefix: Path, tmp_path: Path) -> None:
    database = tmp_path / "gateway.db"
    conn = sqlite3.connect(database, isolation_level=None)
    apply_migrations(conn, database, MIGRATIONS_DIR)
    conn.execute("CREATE TABLE on_trial (x)")
    conn.close()
    begin(prefix, "0.2.0", 60, database=database)
    sqlite3.connect(database, isolation_level=None).execute("INSERT INTO on_trial VALUES (1)")
    done = roll_back(prefix, guard_start(prefix), "not_healthy: uplink")
    assert "database" not in (done.reason or "")
    rows = sqlite3.connect(database).execute("SELECT x FROM on_trial").fetchall()
    assert rows == [(1,)]


def test_prune_keeps_current_and_previous(prefix: Path) -> None:
    switch_to(prefix, "0.2.0")
    assert prune(prefix, keep=2) == []  # 0.1.0 previous, 0.2.0 current, 0.3.0 newest kept
    assert linked_version(prefix) == "0.2.0"


def test_an_unreadable_marker_is_an_error_not_a_guess(prefix: Path) -> None:
    from gateway.remote.update_trial import UpdateTrialError, marker

    marker(prefix).write_text("{not json")
    with pytest.raises(UpdateTrialError):
        guard_start(prefix)
    _guard(prefix)  # as ExecStartPre: exit 0 all the same, or systemd would not start it
    assert linked_version(prefix) == "0.1.0"
