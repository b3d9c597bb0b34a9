"""`gateway-headend voucher receipts`: verify a stick's receipts, reconcile them with the ledger.

The gateway writes `receipts/<id hex>.cose` for each voucher it redeemed: a COSE_Sign1 by the
gateway's own key (kid = gateway id) over the CBOR map {id, gw, meter, amount, currency,
redeemed_ms, balance} (prepay/vouchers.py). Every issued voucher and every receipt file ends in
exactly one row:

* `redeemed`: a receipt signed by its gateway, matching what the ledger says was issued;
* `not_redeemed`: issued, no receipt on the stick (`expired` tells whether it still can be);
* `unknown`: a receipt genuinely signed by an enrolled gateway for an id the ledger lacks;
* `bad_signature`: not verifiable: unreadable, not COSE, no key for its gateway, or forged;
* `mismatch`: validly signed, but its payload disagrees with the ledger (or is malformed).
"""

import datetime as dt
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.errors import Refused
from prepay.errors import PrepayError
from prepay.tariffs import money_units
from uplink.cose import loads_strict, parse_sign1, verify_sign1
from uplink.errors import BadMessage, BadSignature, UplinkError
from uplink.headend.voucher_issue import Issued

# A receipt is ~150 bytes; anything much larger is not one.
MAX_RECEIPT_BYTES: Final = 4096
# Bounds the work a (possibly hostile) stick can cause, as the gateway's reader does.
MAX_RECEIPT_FILES: Final = 5000
RECEIPT_KEYS: Final = frozenset({"id", "gw", "meter", "amount", "currency", "redeemed_ms",
                                 "balance"})
PROBLEMS: Final = frozenset({"unknown", "bad_signature", "mismatch"})


@dataclass(frozen=True, slots=True)
class Row:
    status: str
    voucher: str | None
    gw: str | None = None
    meter: str | None = None
    amount: str | None = None
    currency: str | None = None
    redeemed_ms: int | None = None
    expired: bool | None = None
    file: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class _Refused(Refused):
    """One receipt file cannot be counted as genuine; `reason` is the row's status."""


def receipts_folder(path: Path) -> Path:
    """The stick's root (holding receipts/) or the receipts folder itself."""
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise UplinkError(f"{path}: receipts directory {what}")
    return path / "receipts" if (path / "receipts").is_dir() else path


def _read(path: Path) -> bytes:
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):  # a link could point anywhere on this machine
            raise _Refused("bad_signature", "not a regular file")
        if info.st_size > MAX_RECEIPT_BYTES:
            raise _Refused("bad_signature", f"{info.st_size} bytes, not a receipt")
        with path.open("rb") as handle:
            return handle.read(MAX_RECEIPT_BYTES + 1)
    except OSError as exc:
        raise _Refused("bad_signature", f"unreadable ({exc.strerror})") from None


def verify_receipt(data: bytes, gateway_keys: Mapping[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The verified receipt payload; _Refused with the status otherwise."""
    try:
        msg = parse_sign1(data, max_bytes=MAX_RECEIPT_BYTES)
    except BadMessage as exc:
        raise _Refused("bad_signature", f"not a signed receipt ({exc})") from None
    gw = msg.kid.decode("utf-8", "replace")
    key = gateway_keys.get(gw)
    if key is None:
        raise _Refused("bad_signature", f"no public key for gateway {gw!r} (--gateway-key)")
    try:
        body = loads_strict(verify_sign1(msg, key), "receipt payload")
    except BadSignature:
        raise _Refused("bad_signature", f"signature does not verify with {gw!r}'s key") from None
    except BadMessage as exc:
        raise _Refused("mismatch", str(exc)) from None
    if not isinstance(body, dict) or set(body) != RECEIPT_KEYS:
        raise _Refused("mismatch", "payload is not a receipt map")
    if not isinstance(body["id"], bytes) or len(body["id"]) != 16 or body["gw"] != gw:
        raise _Refused("mismatch", "receipt id or gateway malformed")
    return body


def _compare(body: dict[str, Any], issued: Issued) -> str | None:
    """Why a genuine receipt disagrees with its ledger entry, or None."""
    for field in ("gw", "meter", "currency"):
        if body[field] != getattr(issued, field):
            return f"{field} {body[field]!r}, issued {getattr(issued, field)!r}"
    try:
        same = money_units(body["amount"], "amount") == money_units(issued.amount, "amount")
    except PrepayError as exc:
        return str(exc)
    return None if same else f"amount {body['amount']!r}, issued {issued.amount}"


def _row(path: Path, gateway_keys: Mapping[str, Ed25519PublicKey],
         issued: Mapping[str, Issued]) -> Row:
    name = path.name
    try:
        body = verify_receipt(_read(path), gateway_keys)
    except _Refused as refused:
        return Row(refused.reason, None, file=name, detail=refused.detail)
    vid = body["id"].hex()
    redeemed = body["redeemed_ms"] if isinstance(body["redeemed_ms"], int) else None
    fields = {"gw": body["gw"], "meter": str(body["meter"]), "amount": str(body["amount"]),
              "currency": str(body["currency"]), "redeemed_ms": redeemed, "file": name}
    entry = issued.get(vid)
    if entry is None:
        return Row("unknown", vid, **fields, detail="not in the issued-vouchers ledger")
    problem = _compare(body, entry)
    return Row("mismatch" if problem else "redeemed", vid, **fields, detail=problem)


def receipt_names(folder: Path) -> list[str]:
    """The `*.cose` files of the folder, bounded in number."""
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".cose"))
    except OSError as exc:
        raise UplinkError(f"{folder}: cannot list receipts ({exc.strerror})") from None
    if len(names) > MAX_RECEIPT_FILES:
        raise UplinkError(f"{folder}: {len(names)} receipt files, more than {MAX_RECEIPT_FILES}")
    return names


def reconcile(folder: Path, gateway_keys: Mapping[str, Ed25519PublicKey],
              issued: Mapping[str, Issued], now_s: float | None = None) -> list[Row]:
    """One row per receipt file and per issued voucher without a genuine receipt."""
    now_s = time.time() if now_s is None else now_s
    rows: list[Row] = []
    seen: set[str | None] = set()
    for name in receipt_names(folder):
        row = _row(folder / name, gateway_keys, issued)
        if row.status == "redeemed" and row.voucher in seen:
            continue  # the same receipt copied twice counts once
        if row.status in ("redeemed", "mismatch"):
            seen.add(row.voucher)
        rows.append(row)
    for vid, entry in issued.items():
        if vid not in seen:
            rows.append(Row("not_redeemed", vid, entry.gw, entry.meter, entry.amount,
                            entry.currency, expired=entry.exp < now_s))
    return rows


COLUMNS: Final = ("status", "voucher", "gw", "meter", "amount", "currency", "redeemed",
                  "detail")


def table(rows: list[Row]) -> list[str]:
    """Aligned text lines: a header, one line per row, and the count per status."""
    cells = [COLUMNS] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip()
             for c in cells]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no vouchers")
    return lines


def _cells(r: Row) -> tuple[str, ...]:
    when = "" if r.redeemed_ms is None else dt.datetime.fromtimestamp(
        r.redeemed_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    detail = r.detail or ("expired" if r.expired else "")
    if r.file and r.status != "redeemed":
        detail = f"{r.file}: {detail}" if detail else r.file
    return (r.status, r.voucher or "-", r.gw or "", r.meter or "", r.amount or "",
            r.currency or "", when, detail)
