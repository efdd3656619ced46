"""Specs: safe YAML loading with line numbers (`yamlload`), JSON Schemas (`schema`, `schemas/`) and the checks
behind `rlops validate` (`validate`). A spec declares; nothing here ever executes what a spec says.
"""
