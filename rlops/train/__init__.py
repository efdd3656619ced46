"""Training: making the parent checkpoint available (`base`) and one module per method over TRL."""
