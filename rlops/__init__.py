"""rlops: continuous improvement of deployed LLM agents as a declarative GitOps pipeline.

Kept light on purpose: importing rlops imports nothing heavy (no torch, transformers, trl, lm_eval, dvc).
"""

__version__ = "0.1.0"
