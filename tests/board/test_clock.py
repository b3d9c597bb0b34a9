"""Clock trust: sync detection from timesyncd's flag, adjtimex and timedatectl; jump detection."""

from __future__ import annotations

from pathlib import Path

from board.clock import (
    ClockSync,
    ClockWatch,
    adjtimex_synced,
    parse_timedatectl,
    timedatectl_synced,
)

TIMEDATECTL_SHOW = """Timezone=Africa/Nairobi
LocalRTC=no
CanNTP=yes
NTP=yes
NTPSynchronized=no
TimeUSec=Thu 1970-01-01 03:00:41 EAT
RTCTimeUSec=n/a
"""


def test_parse_timedatectl_show() -> None:
    fields = parse_timedatectl(TIMEDATECTL_SHOW)
    assert fields["NTPSynchronized"] == "no"
    assert fields["RTCTimeUSec"] == "n/a"
    assert fields["TimeUSec"] == "Thu 1970-01-01 03:00:41 EAT"


def test_timedatectl_probe_runs_the_command(tmp_path: Path) -> None:
    fake = tmp_path / "timedatectl"
    fake.write_text("#!/bin/sh\nprintf 'NTP=yes\\nNTPSynchronized=yes\\n'\n")
    fake.chmod(0o755)
    assert timedatectl_synced(str(fake)) is True
    assert timedatectl_synced(str(tmp_path / "absent")) is None


def test_adjtimex_answers_without_privilege() -> None:
    assert adjtimex_synced() in (True, False, None)


def test_sync_latches_and_flag_file_wins(tmp_path: Path) -> None:
    answers: list[bool | None] = [None, False]
    sync = ClockSync(flag_file=tmp_path / "synchronized", probes=(lambda: answers[0],
                                                                 lambda: answers[1]))
    assert sync.is_synced() is False
    answers[1] = True
    assert sync.is_synced() is True
    answers[1] = False
    assert sync.is_synced() is True  # once trusted, a flaky probe does not un-trust it
    flagged = ClockSync(flag_file=tmp_path / "synchronized", probes=())
    assert flagged.is_synced() is False
    (tmp_path / "synchronized").touch()
    assert flagged.is_synced() is True


class FakeClocks:
    def __init__(self) -> None:
        self.wall = 0  # 1970: a Pi without RTC
        self.mono = 5_000_000_000

    def advance(self, ns: int) -> None:
        self.wall += ns
        self.mono += ns


def test_stamps_marked_until_sync_and_jump_reported_once(tmp_path: Path) -> None:
    clocks = FakeClocks()
    synced = [False]
    watch = ClockWatch(ClockSync(flag_file=tmp_path / "f", probes=(lambda: synced[0],)),
                       wall_ns=lambda: clocks.wall, mono_ns=lambda: clocks.mono)
    first = watch.stamp()
    assert first.synced is False
    clocks.advance(60_000_000_000)
    assert watch.check_jump() is None
    clocks.wall += 1_780_000_000 * 1_000_000_000  # NTP steps the clock to 2026
    synced[0] = True
    jump = watch.check_jump()
    assert jump is not None and jump.jump_ms == 1_780_000_000_000
    assert watch.check_jump() is None
    assert watch.stamp().synced is True
    clocks.wall -= 3_600_000_000_000  # a backwards step is a jump too
    back = watch.check_jump()
    assert back is not None and back.jump_ms == -3_600_000


def test_small_slew_is_not_a_jump(tmp_path: Path) -> None:
    clocks = FakeClocks()
    watch = ClockWatch(ClockSync(flag_file=tmp_path / "f", probes=()),
                       wall_ns=lambda: clocks.wall, mono_ns=lambda: clocks.mono)
    clocks.advance(10_000_000_000)
    clocks.wall += 500_000_000
    assert watch.check_jump() is None
