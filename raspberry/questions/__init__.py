"""Question sources (one module each), filters, deduplication and the paid checks; steps.py
applies them in a build's order, config.py holds the `questions:` section."""
