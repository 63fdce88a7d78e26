"""The example configs, installed as the data package `raspberry_configs` (see app/init.py)."""
