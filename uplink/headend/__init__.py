"""Reference head-end: receives, verifies and stores gateway batches, acks them, sends commands."""
