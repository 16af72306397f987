"""The torch training engine: SPDF runs (sparse pre-training, dense fine-tuning) and their traces."""
