"""Training: the SRML loss, its collator and trainer, and the tiny model used by tests and the demo."""
