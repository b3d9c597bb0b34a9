"""SQLite store: schema, migrations, readings, events, outbox."""
