"""Structured pruning: remove whole channels from a trained model, fine-tune it back."""
