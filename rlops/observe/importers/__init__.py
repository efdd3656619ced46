"""Importers: other tools' logs and public preference datasets -> rlops v1 interactions and feedback.

Each format is one module with `convert(ctx, source)`, which yields ("interaction" | "feedback", record, where)
and reports what it could not map through `ctx`; its docstring holds the field mapping table.
`rlops.observe.importers.run.import_logs` drives one import. Import-light: stdlib only, modules load on use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from rlops.errors import InvalidInput, Problem

# name -> (module, what it reads); the order is the order `rlops import --help` lists them
FORMATS: dict[str, tuple[str, str]] = {
    "otel": ("otel", "OpenTelemetry GenAI spans exported as OTLP/JSON (.json or .jsonl)"),
    "openai": ("openai", "OpenAI Chat Completions request/response logs, or Batch API input + output files"),
    "langfuse": ("langfuse", "Langfuse export: traces with observations and scores"),
    "langsmith": ("langsmith", "LangSmith runs export + feedback export"),
    "hh-rlhf": ("hh_rlhf", "Anthropic HH-RLHF transcripts (chosen/rejected)"),
    "ultrafeedback": ("ultrafeedback", "UltraFeedback-binarized (prompt, chosen, rejected, scores)"),
    "openai-dpo": ("openai_dpo", "OpenAI DPO fine-tuning JSONL (preferred/non-preferred output)"),
    "trl-preference": ("trl_preference", "TRL preference rows {prompt, chosen, rejected}, standard or conversational"),
    "trl-unpaired": ("trl_unpaired", "TRL unpaired preference rows {prompt, completion, label}"),
}


def names() -> list[str]:
    return list(FORMATS)


def load(name: str) -> ModuleType:
    """The importer module of format `name`; InvalidInput listing the formats when there is none."""
    if name not in FORMATS:
        raise InvalidInput([Problem("", None, "FORMAT", f"unknown format {name!r}; formats: {', '.join(FORMATS)}")],
                           hint="rlops import --help lists the formats and what each reads")
    return importlib.import_module(f"{__name__}.{FORMATS[name][0]}")
