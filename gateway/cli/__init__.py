"""The `gateway` command line: `main.py` discovers the sub-commands from the `cmd_*.py` modules."""
