"""The transport kit: one byte-stream interface and its serial, TCP, in-memory and pty backends."""
