"""Manufacturer quirks for wireless M-Bus: formats as data, looked up by make, version, type."""
