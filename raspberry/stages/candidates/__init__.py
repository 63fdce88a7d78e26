"""The candidates stage: every question source (registered in `sources.py`), the format rules and
decontamination that screen their rows; `config.py` is the `questions:` section that this stage
and the questions stage read."""
