"""Evaluation: suites under specs/evals/, metrics by name, lm-eval runs for candidate and incumbent."""
