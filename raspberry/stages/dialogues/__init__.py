"""The dialogues stage: the teacher and the user stand-in talk until the answer is right
(`loop.py`); `config.py` is the `dialogues:` section."""
