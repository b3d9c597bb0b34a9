"""Benchmarks run by `make bench` (never by the tests): each module prints one JSON object."""
