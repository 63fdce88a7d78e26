"""The prompt files, installed as the data package `raspberry_prompts` (see app/init.py)."""
