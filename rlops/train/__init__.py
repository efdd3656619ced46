"""Training: making the parent checkpoint available (`base` stage, parent.py) and one module per method over TRL."""
