"""Evaluation suites: specs/evals/<name>/suite.yaml + data, turned into lm-eval task configs in code.

The task config is built here rather than read from an lm-eval YAML, so that a suite in a spec folder can name
metrics but never bring code (`!function`) with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops import components
from rlops.errors import InvalidInput, Problem


@dataclass(frozen=True)
class Suite:
    name: str
    data: Path  # absolute: lm-eval resolves relative data_files against the working directory
    metrics: tuple[str, ...]
    max_new_tokens: int | None


def load_suite(root: Path, suites_dir: str, name: str) -> Suite:
    from rlops.spec.yamlload import load_yaml

    folder = root / suites_dir / name
    path = folder / "suite.yaml"
    rel = str(path.relative_to(root))
    if not path.is_file():
        raise InvalidInput([Problem(rel, None, "", "suite not found")],
                           hint=f"create {rel}, or remove '{name}' from the cycle spec's evaluate.suites")
    loaded = load_yaml(path, root)
    doc = loaded.data if isinstance(loaded.data, dict) else {}
    problems = []
    metrics = doc.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        problems.append(Problem(rel, loaded.line(("metrics",)), "metrics", "must be a non-empty list of metric names"))
        metrics = []
    for i, m in enumerate(metrics):
        if m not in components.names("metric"):  # metrics are components (rlops/evaluate/metrics.py)
            problems.append(Problem(rel, loaded.line(("metrics", i)), f"metrics[{i}]",
                                    f"unknown metric '{m}'; known: {', '.join(sorted(components.names('metric')))}"))
    data = (folder / str(doc.get("data", "prompts.jsonl"))).resolve()
    if not data.is_relative_to(folder.resolve()) or not data.is_file():
        problems.append(Problem(rel, loaded.line(("data",)), "data", f"'{doc.get('data')}' is not a file in {folder.relative_to(root)}"))
    gen = doc.get("generation") or {}
    if problems:
        raise InvalidInput(problems)
    return Suite(name=name, data=data, metrics=tuple(metrics), max_new_tokens=gen.get("max_new_tokens"))


def task_config(suite: Suite, max_new_tokens: int, graders: dict[str, Any] | None = None) -> dict[str, Any]:
    """An lm-eval task config (a dict, so `process_results` can be a function of ours); `graders` replace some
    metrics' functions (a refusal judge in place of the rules), keeping their names and directions."""

    metrics = {m: components.get("metric", m) for m in suite.metrics}
    grade = {m: (graders or {}).get(m, metric.function) for m, metric in metrics.items()}

    def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
        return {m: grade[m](doc, results[0]) for m in metrics}

    return {
        "task": f"rlops_{suite.name}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(suite.data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "",
        "generation_kwargs": {"until": [], "max_gen_toks": suite.max_new_tokens or max_new_tokens, "do_sample": False},
        "process_results": process_results,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": metric.higher_is_better}
                        for m, metric in metrics.items()],
    }


def read_items(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
