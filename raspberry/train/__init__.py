"""Fine-tuning a student on a build: the train: section, its data, its base model and the local
backend (docs/training.md)."""
