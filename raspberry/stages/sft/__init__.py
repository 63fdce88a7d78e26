"""The SFT stage: rewrite accepted dialogues into self-correcting monologues, check them, and
export the build's files (formats, preference pairs, RL rows, the card)."""
