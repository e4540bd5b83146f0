// Checkpoint store: see docs/checkpoint-format.md.
