"""Fuzzing harness for every parser reachable from outside (`make fuzz`, docs/fuzzing.md)."""
