"""Wired M-Bus (EN 13757-2 link layer over FT1.2, EN 13757-3 application layer from
drivers/mbus): the sans-IO messages, the master session, secondary search and a simulated bus.
The config protocol name is "mbus"."""
