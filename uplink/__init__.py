"""Uplink: signed hash-chained batches over MQTT, acks, commands, reference head-end."""
