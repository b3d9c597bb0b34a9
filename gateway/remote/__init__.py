"""Remote management from the head-end: configuration push with rollback, health telemetry."""
