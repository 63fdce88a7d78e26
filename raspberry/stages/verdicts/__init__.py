"""The verdicts stage: the programmatic check and the judge decide which dialogues are kept."""
