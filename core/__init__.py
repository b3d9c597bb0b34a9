"""The shared kernel: small modules every package may import; it imports nothing of the project."""
