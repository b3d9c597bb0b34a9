"""The storage exception tree: every error the SQLite store raises names the file or row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from core.errors import MeterGatewayError


class StorageError(MeterGatewayError):
    """Base of every error raised by storage/; the message names the path, key or row."""


class StoreCorrupt(StorageError):
    """The database file is damaged (bad header, malformed pages, failed integrity check)."""


class NotAGatewayStore(StorageError):
    """The file is a valid SQLite database, but not one made by this gateway (application_id)."""


class StoreFull(StorageError):
    """No room: the size bound is reached with nothing left to evict, or the disk is full."""


class SchemaTooNew(StorageError):
    """The database was migrated by newer code than this one (PRAGMA user_version too high)."""


class StoreUnwritable(StorageError):
    """The file or its directory cannot be opened for writing (permissions, read-only mount)."""


# SQLite primary result codes (https://sqlite.org/rescode.html), low byte of extended codes.
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


# What reading a damaged file can raise: SQLite's own errors, and UnicodeDecodeError when damaged
# bytes land in text that sqlite3 decodes (a column value, or a message quoting the schema).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, UnicodeDecodeError)


def translate(exc: Exception, path: Path | str, action: str) -> StorageError:
    """Map a DATABASE_ERRORS exception to the storage tree, naming the file and the action."""
    if isinstance(exc, UnicodeDecodeError):
        return StoreCorrupt(f"{path}: {action} failed: damaged text (not UTF-8) in the file")
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = f"{path}: {action} failed: {exc}"
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorrupt(message)
    if primary == _SQLITE_FULL:
        return StoreFull(message)
    if primary in (_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_CANTOPEN, _SQLITE_IOERR):
        return StoreUnwritable(message)
    return StorageError(message)


class InvalidRecord(StorageError):
    """A value handed to the store has the wrong type or range; the message names the field."""


class UnknownMeter(StorageError):
    """A query names a meter id the store has never seen."""
