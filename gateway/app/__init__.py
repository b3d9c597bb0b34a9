"""The running service: the service loop, its supervisor, the scheduler, the writer, logging."""
