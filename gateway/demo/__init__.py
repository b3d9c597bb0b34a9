"""`gateway demo`: a whole simulated site (simulators, broker, head-end) beside the real service."""
