"""Whole-system tests against simulated devices over real ptys and a real broker; benches."""
