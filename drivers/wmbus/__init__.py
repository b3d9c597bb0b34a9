"""Wireless M-Bus (EN 13757-3/-4, OMS): dongles, link layer, AES security, data records."""
