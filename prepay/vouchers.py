"""USB-stick vouchers: signed credit on a stick, redeemed once, with a signed receipt back.

A stick carries `vouchers/*.cose`, each a COSE_Sign1 (EdDSA) whose payload is a CBOR map
{id: 16 random bytes, gw, meter, amount: decimal text, currency, exp: unix seconds}. The
signature check is injected (`verify(data) -> (kid, payload)`, raising VoucherRefused) and so
is receipt signing (`sign(payload) -> bytes`): prepay does not import uplink; gateway wires
`uplink.cose` in. Receipts go to `receipts/<id hex>.cose` on the same stick.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from prepay.commands import account_summary, credit_topup
from prepay.engine import PrepayEngine
from prepay.errors import TariffError, VoucherRefused
from prepay.tariffs import money_text, money_units
from storage import ledger

LOGGER = logging.getLogger(__name__)

MAX_VOUCHER_BYTES = 2048  # a voucher is ~200 bytes; anything larger is not one of ours
MAX_FILES_PER_STICK = 500  # bounds the work one (possibly hostile) stick can cause
VOUCHER_ID_BYTES = 16  # 128-bit random id
PAYLOAD_KEYS = {"id", "gw", "meter", "amount", "currency", "exp"}
# exp (unix seconds) is compared in milliseconds: bounded so `exp * 1000` is a signed 64-bit int
MAX_EXP_S = (2**63 - 1) // 1000

Verify = Callable[[bytes], tuple[str, bytes]]
Sign = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Voucher:
    id: str  # hex of the 16 id bytes
    gw: str
    meter: str
    amount: int  # money units (1/10000)
    currency: str
    exp: int  # unix seconds
    kid: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one file: `status` is "redeemed" or "refused" (then `reason`)."""

    file: str
    status: str
    reason: str | None = None
    voucher_id: str | None = None
    meter: str | None = None


def build_voucher_payload(gw: str, meter: str, amount: str, currency: str, exp_s: int,
                          voucher_id: bytes | None = None) -> bytes:
    """The CBOR payload the head-end signs (`gateway-headend voucher issue`)."""
    money_units(amount, "amount")  # refuse what the gateway would refuse
    vid = voucher_id if voucher_id is not None else secrets.token_bytes(VOUCHER_ID_BYTES)
    if len(vid) != VOUCHER_ID_BYTES:
        raise TariffError(f"voucher id must be {VOUCHER_ID_BYTES} bytes")
    return cbor2.dumps({"id": vid, "gw": gw, "meter": meter, "amount": amount,
                        "currency": currency, "exp": int(exp_s)})


def parse_payload(payload: bytes, kid: str) -> Voucher:
    """Decode and check a verified payload; VoucherRefused("garbage") on any defect."""
    try:
        data = cbor2.loads(payload)
    except Exception as exc:  # cbor2 raises many types on hostile input
        raise VoucherRefused("garbage", f"payload is not CBOR ({type(exc).__name__})") from None
    if not isinstance(data, dict) or set(data) != PAYLOAD_KEYS:
        raise VoucherRefused("garbage", "payload must be a map with exactly " +
                             ", ".join(sorted(PAYLOAD_KEYS)))
    vid, exp = data["id"], data["exp"]
    if not isinstance(vid, bytes) or len(vid) != VOUCHER_ID_BYTES:
        raise VoucherRefused("garbage", "id must be 16 bytes")
    if isinstance(exp, bool) or not isinstance(exp, int) or not 0 <= exp <= MAX_EXP_S:
        raise VoucherRefused("garbage", f"exp must be an integer 0..{MAX_EXP_S}")
    texts = [data[k] for k in ("gw", "meter", "currency")]
    if not all(isinstance(t, str) and 0 < len(t) <= 64 for t in texts):
        raise VoucherRefused("garbage", "gw, meter and currency must be short strings")
    try:
        amount = money_units(data["amount"], "amount")
    except TariffError as exc:
        raise VoucherRefused("bad_amount", str(exc)) from None
    if amount <= 0:
        raise VoucherRefused("bad_amount", "amount must be positive")
    return Voucher(vid.hex(), data["gw"], data["meter"], amount, data["currency"], exp, kid)


class VoucherReader:
    """Redeems vouchers from sticks the board reports as mounted, once per insertion."""

    def __init__(self, engine: PrepayEngine, gateway_id: str, verify: Verify,
                 sign: Sign) -> None:
        self.engine = engine
        self.gateway_id = gateway_id
        self.verify = verify
        self.sign = sign
        self._seen: set[str] = set()

    def on_mounts(self, mounts: Iterable[str]) -> list[Outcome]:
        """Process sticks that appeared since the last call (call with board.mount_points())."""
        current = set(mounts)
        outcomes: list[Outcome] = []
        for mount in sorted(current - self._seen):
            outcomes.extend(self.redeem_stick(Path(mount)))
        self._seen = current
        return outcomes

    def redeem_stick(self, mount: Path) -> list[Outcome]:
        """Every `vouchers/*.cose` file of the stick: redeemed or refused with a reason."""
        folder = mount / "vouchers"
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".cose"))
        except OSError:
            return []
        writable = _writable(mount / "receipts")
        return [self._guarded(mount, name, index, writable) for index, name in enumerate(names)]

    def _guarded(self, mount: Path, name: str, index: int, writable: bool) -> Outcome:
        """One file, decided and reported; whatever it holds, the next file is read after it.

        The two broad catches are the reader's boundary: a file's content (or a defect it
        reveals in our code) refuses that file as `unprocessable`, logged with its traceback,
        instead of ending the reader for every stick after it, also after a restart.
        """
        try:
            outcome = self._decide(mount, name, index, writable)
        except Exception as exc:
            self._log_failure("voucher_unprocessable", mount, name, exc)
            outcome = Outcome(_printable(name), "refused", "unprocessable")
        try:
            self._report(mount, outcome)
        except Exception as exc:
            self._log_failure("voucher_report_failed", mount, name, exc)
        return outcome

    def _decide(self, mount: Path, name: str, index: int, writable: bool) -> Outcome:
        if index >= MAX_FILES_PER_STICK:
            return Outcome(_printable(name), "refused", "too_many_files")
        if not writable:
            return Outcome(_printable(name), "refused", "read_only_stick")
        return self._one(mount / "vouchers" / name, mount / "receipts")

    @staticmethod
    def _log_failure(event: str, mount: Path, name: str, exc: Exception) -> None:
        LOGGER.exception(event, extra={"file": _printable(name), "mount": _printable(str(mount)),
                                       "error": type(exc).__name__})

    def _one(self, path: Path, receipts: Path) -> Outcome:
        voucher: Voucher | None = None
        try:
            data = _read_plain_file(path)
            kid, payload = self.verify(data)
            voucher = parse_payload(payload, kid)
            return self._redeem(_printable(path.name), voucher, receipts)
        except VoucherRefused as refused:
            return Outcome(_printable(path.name), "refused", refused.reason,
                           voucher.id if voucher else None, voucher.meter if voucher else None)

    def _redeem(self, name: str, v: Voucher, receipts: Path) -> Outcome:
        now = self.engine.clock()
        if v.gw != self.gateway_id:
            raise VoucherRefused("foreign_gateway", f"voucher for gateway {v.gw!r}")
        meter = self.engine.settings.meters.get(v.meter)
        if meter is None:
            raise VoucherRefused("foreign_meter", f"meter {v.meter!r} is not on this gateway")
        if v.exp * 1000 < now:
            raise VoucherRefused("expired", f"expired at {v.exp}")
        if v.currency != self.engine.settings.currency:
            raise VoucherRefused("wrong_currency", v.currency)
        with self.engine.store.transaction() as tx:
            if ledger.voucher_redeemed(tx, v.id):
                summary = None
            else:
                ledger.save_voucher(tx, v.id, v.meter, v.amount, v.kid, now)
                credit_topup(self.engine, tx, meter, v.amount, f"voucher:{v.id}", now,
                             {"voucher": v.id, "kid": v.kid, "via": "usb"})
                summary = account_summary(tx, v.meter)
        if summary is None:
            self._write_receipt(receipts, v, now, None, only_if_missing=True)
            raise VoucherRefused("already_redeemed", f"voucher {v.id} was redeemed before")
        self._write_receipt(receipts, v, now, summary["balance"], only_if_missing=False)
        return Outcome(name, "redeemed", None, v.id, v.meter)

    def _write_receipt(self, receipts: Path, v: Voucher, now: int, balance: str | None,
                       only_if_missing: bool) -> None:
        target = receipts / f"{v.id}.cose"
        if only_if_missing and target.exists():
            return
        body = cbor2.dumps({"id": bytes.fromhex(v.id), "gw": self.gateway_id, "meter": v.meter,
                            "amount": money_text(v.amount), "currency": v.currency,
                            "redeemed_ms": now, "balance": balance})
        try:
            _write_atomic(target, self.sign(body))
        except OSError as exc:
            # the credit is committed; the receipt is written again on the next insertion
            LOGGER.error("voucher_receipt_failed",
                         extra={"meter": v.meter, "voucher": v.id, "error": str(exc)})

    def _report(self, mount: Path, outcome: Outcome) -> None:
        data: dict[str, Any] = {"file": outcome.file, "mount": _printable(str(mount)),
                                "voucher": outcome.voucher_id}
        if outcome.status == "redeemed":
            kind, severity = "voucher_redeemed", "info"
        else:
            kind, severity = "voucher_refused", "warning"
            data["reason"] = outcome.reason
        with self.engine.store.transaction() as tx:
            self.engine.event(tx, kind, outcome.meter, data, self.engine.clock(), severity)


def _read_plain_file(path: Path) -> bytes:
    """Read a voucher file: no symlinks, regular files only, bounded size."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise VoucherRefused("unreadable", f"{path.name}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise VoucherRefused("symlink", f"{path.name} is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise VoucherRefused("not_a_file", f"{path.name} is not a regular file")
    if info.st_size > MAX_VOUCHER_BYTES:
        raise VoucherRefused("oversized", f"{path.name}: {info.st_size} bytes")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        reason = "symlink" if exc.errno == errno.ELOOP else "unreadable"
        raise VoucherRefused(reason, f"{path.name}: {exc.strerror}") from None
    try:
        data = os.read(fd, MAX_VOUCHER_BYTES + 1)
    except OSError as exc:  # a failing stick (EIO) refuses this file, not the whole stick
        raise VoucherRefused("unreadable", f"{path.name}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_VOUCHER_BYTES:  # grew between lstat and read
        raise VoucherRefused("oversized", f"{path.name}: more than {MAX_VOUCHER_BYTES} bytes")
    return data


def _printable(name: str) -> str:
    """A file or mount name fit for events and logs: undecodable bytes (which os.listdir
    hands back as lone surrogates, which SQLite and CBOR refuse as text) are spelt `\\udcff`."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _writable(receipts: Path) -> bool:
    """True when a receipt can be written (the receipts folder exists or can be made)."""
    probe = receipts / ".write-probe"
    try:
        receipts.mkdir(exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return False
    return True


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
