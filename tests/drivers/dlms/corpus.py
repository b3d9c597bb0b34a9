"""The DLMS conformance corpus (tests/corpus/dlms): the shared public frames (a copy of
../shared/corpus/dlms/frames.json), each entry naming its source. Ciphered vectors are not
corpus data: vectors.py builds them."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from tests.corpus import CORPUS as CORPUS_ROOT

DLMS_CORPUS = CORPUS_ROOT / "dlms"
FILES = ("frames.json",)


@cache
def _load(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(json.loads((DLMS_CORPUS / name).read_text(encoding="utf-8")))


def entries(name: str | None = None) -> tuple[dict[str, Any], ...]:
    """Every entry of one corpus file, or of all of them."""
    if name is not None:
        return _load(name)
    return tuple(e for f in FILES for e in _load(f))
