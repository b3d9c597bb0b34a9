"""Prepaid credit: ledger logic, tariffs, vouchers, relay decisions."""
