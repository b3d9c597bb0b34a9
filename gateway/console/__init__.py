"""Technician console: a line-oriented shell over a serial line or the local control socket."""
