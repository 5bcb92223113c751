"""The pruning core: masks, magnitude pruning, training under a mask, the IMP loop and fine-tuning."""
