"""`gateway-headend voucher issue`: signed USB-stick vouchers and the ledger of what was issued.

A voucher is exactly what the gateway's stick reader accepts (docs/prepay.md): a COSE_Sign1
by the utility's voucher key, `kid` naming that key, over the payload `prepay.vouchers`
builds. Before anything is written, a sample payload goes through the gateway's own decoder
(`prepay.vouchers.parse_payload`), so the head-end never issues what a gateway would refuse.

The ledger is `issued.jsonl` (one JSON object per voucher, append-only, fsynced) kept with the
back office, not on the stick: `voucher receipts` reconciles the stick's receipts against it.
Each voucher is entered in the ledger before its file exists, so a crash in between leaves a
ledger entry that never shows as redeemed, never a voucher the ledger does not know.
"""

import datetime as dt
import fcntl
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from prepay.errors import PrepayError, VoucherRefused
from prepay.tariffs import money_text, money_units
from prepay.vouchers import (
    MAX_FILES_PER_STICK,
    VOUCHER_ID_BYTES,
    build_voucher_payload,
    parse_payload,
)
from uplink.cose import sign1
from uplink.errors import UplinkError
from uplink.headend.usage import HeadendUsageError

LOGGER = logging.getLogger(__name__)
LEDGER_FILE: Final = "issued.jsonl"
VOUCHER_DIR: Final = "vouchers"
DEFAULT_VALIDITY_DAYS: Final = 365
# An operator's guard against a slipped digit; raise it with --max-amount when meant.
DEFAULT_MAX_AMOUNT: Final = "1000.00"
CURRENCY = re.compile(r"[A-Z]{3}")  # ISO 4217 shape, as the gateway's [prepay] currency
# What an operator types for money: digits, optional point, up to 4 decimals (no 1e3, no sign).
PLAIN_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,4})?")
# One stick's worth: the gateway reads at most this many files per insertion.
MAX_COUNT: Final = MAX_FILES_PER_STICK


@dataclass(frozen=True, slots=True)
class VoucherSpec:
    gw: str
    meter: str
    amount: str  # decimal text in currency units, as given
    currency: str
    exp_s: int
    kid: str


@dataclass(frozen=True, slots=True)
class Issued:
    """One ledger line."""

    id: str  # hex of the 16 id bytes
    gw: str
    meter: str
    amount: str  # exact, 4 decimals (money_text), as the gateway's receipt spells it
    currency: str
    exp: int
    kid: str
    issued_ms: int
    file: str  # relative to the output directory

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def parse_expiry(text: str | None, now_s: float) -> int:
    """`YYYY-MM-DD` (valid through that day, UTC) or an ISO datetime with offset -> unix s."""
    if text is None:
        return int(now_s) + DEFAULT_VALIDITY_DAYS * 86400
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when = dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)
        else:
            when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise HeadendUsageError(f"--expires {text!r}: expected YYYY-MM-DD or an ISO datetime with "
                                "offset") from None
    if when.tzinfo is None:
        raise HeadendUsageError(f"--expires {text!r}: a datetime needs its UTC offset")
    exp = int(when.timestamp())
    if exp <= now_s:
        raise HeadendUsageError(f"--expires {text!r}: already in the past")
    return exp


def check_amount(amount: str, currency: str, max_amount: str) -> int:
    """The amount in money units: plain decimal, at most 4 decimals, > 0, <= max_amount."""
    if not CURRENCY.fullmatch(currency):
        raise HeadendUsageError(f"--currency {currency!r}: expected three capital letters (EUR)")
    if not PLAIN_AMOUNT.fullmatch(amount):
        raise HeadendUsageError(f"--amount {amount[:40]!r}: expected a plain decimal with at "
                                "most 4 decimals (20.00)")
    try:
        cap = money_units(max_amount, "--max-amount")
        units = money_units(amount, "--amount")
    except PrepayError as exc:
        raise HeadendUsageError(str(exc)) from None
    if units <= 0:
        raise HeadendUsageError(f"--amount {amount!r}: must be more than zero")
    if units > cap:
        raise HeadendUsageError(f"--amount {amount!r}: above --max-amount {max_amount}")
    return units


def check_spec(spec: VoucherSpec) -> None:
    """Refuse, before signing anything, what the gateway's voucher decoder would refuse."""
    if not spec.kid:
        raise HeadendUsageError("--kid: must not be empty")
    try:
        payload = build_voucher_payload(spec.gw, spec.meter, spec.amount, spec.currency,
                                        spec.exp_s, bytes(VOUCHER_ID_BYTES))
        parse_payload(payload, spec.kid)
    except VoucherRefused as exc:
        raise HeadendUsageError(f"voucher for meter {spec.meter!r} of {spec.gw!r}: the gateway "
                                f"would refuse it ({exc})") from None
    except PrepayError as exc:
        raise HeadendUsageError(f"voucher for meter {spec.meter!r}: {exc}") from None


def load_ledger(path: Path) -> dict[str, Issued]:
    """The issued vouchers by id; UplinkError naming the file and line on any defect."""
    try:
        with path.open(encoding="utf-8") as handle:
            return _parse_ledger(path, handle)
    except FileNotFoundError:
        raise UplinkError(f"{path}: issued-vouchers ledger does not exist") from None
    except OSError as exc:
        raise UplinkError(f"{path}: cannot read the ledger ({exc.strerror})") from None


def _parse_ledger(path: Path, handle: IO[str]) -> dict[str, Issued]:
    issued: dict[str, Issued] = {}
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            entry = Issued(**json.loads(line))
        except (ValueError, TypeError) as exc:
            raise UplinkError(f"{path}:{number}: not a ledger entry ({exc})") from None
        issued[entry.id] = entry
    return issued


@contextmanager
def _locked_ledger(path: Path) -> Iterator[IO[str]]:
    """The ledger open for appending, locked: two issuers never interleave or reuse an id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def _new_id(known: set[str]) -> bytes:
    while True:  # 128 random bits: a repeat is not expected, but is never issued
        vid = secrets.token_bytes(VOUCHER_ID_BYTES)
        if vid.hex() not in known:
            known.add(vid.hex())
            return vid


def _write_new(target: Path, data: bytes) -> None:
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def issue(spec: VoucherSpec, key: Ed25519PrivateKey, out_dir: Path, count: int,
          ledger_path: Path | None = None) -> list[Issued]:
    """Sign `count` vouchers into OUT/vouchers/<id>.cose, each entered in the ledger first."""
    if not 1 <= count <= MAX_COUNT:
        raise HeadendUsageError(f"--count {count}: expected 1..{MAX_COUNT} (one stick's worth)")
    check_spec(spec)
    ledger_path = ledger_path or out_dir / LEDGER_FILE
    folder = out_dir / VOUCHER_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _locked_ledger(ledger_path) as ledger:
            known = set(load_ledger(ledger_path))
            return [_issue_one(spec, key, out_dir, folder, ledger, known) for _ in range(count)]
    except OSError as exc:
        raise UplinkError(f"{exc.filename or out_dir}: cannot write vouchers "
                          f"({exc.strerror})") from None


def _issue_one(spec: VoucherSpec, key: Ed25519PrivateKey, out_dir: Path, folder: Path,
               ledger: IO[str], known: set[str]) -> Issued:
    vid = _new_id(known)
    payload = build_voucher_payload(spec.gw, spec.meter, spec.amount, spec.currency, spec.exp_s,
                                    vid)
    target = folder / f"{vid.hex()}.cose"
    entry = Issued(vid.hex(), spec.gw, spec.meter, money_text(money_units(spec.amount, "amount")),
                   spec.currency, spec.exp_s, spec.kid, int(time.time() * 1000),
                   str(target.relative_to(out_dir)))
    ledger.write(entry.to_json() + "\n")
    ledger.flush()
    os.fsync(ledger.fileno())
    _write_new(target, sign1(payload, key, spec.kid.encode()))
    LOGGER.info("voucher_issued", extra={"meter": spec.meter, "gw": spec.gw, "voucher": entry.id,
                                         "amount": entry.amount, "currency": entry.currency})
    return entry


def issued_summary(entry: Issued) -> dict[str, Any]:
    """What `voucher issue` prints per voucher (also its --json line)."""
    exp = dt.datetime.fromtimestamp(entry.exp, dt.UTC).isoformat()
    return {"id": entry.id, "gw": entry.gw, "meter": entry.meter, "amount": entry.amount,
            "currency": entry.currency, "expires": exp, "file": entry.file}
