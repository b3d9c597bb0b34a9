"""Composition root: config, service loop, CLI, console."""
