"""The `raspberry` command: the application layer over the core (installed as raspberry_app)."""
