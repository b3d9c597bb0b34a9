"""The M-Bus family's shared layers (EN 13757-2/-3): the application layer (data records, VIF
tables, exact values, mapping to the gateway's quantities) and the wired long frame, used by
wireless M-Bus (drivers/wmbus) and wired M-Bus alike."""
