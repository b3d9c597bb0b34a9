"""Meter protocol drivers: bytes <-> typed readings. Knows nothing of storage, uplink or prepay."""
