"""SFT: rewrite accepted dialogues into self-correcting monologues, check them, export them."""
