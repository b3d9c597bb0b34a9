"""Public captures from real meters (a copy of the shared corpus; README.md names each source)."""

from pathlib import Path

CORPUS = Path(__file__).parent
