"""The config file: its schema, loading and validation, and the start-up checks of what it names."""
