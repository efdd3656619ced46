"""Every artifact path of a cycle, named once: what each DVC stage writes, and where the rest of rlops reads it.

Paths are POSIX strings relative to the repository root, the form git and `dvc.lock` use; join them to a root with
`root / layout.VERDICT`. A name that depends on a setting is a function of params.yaml (`pairs(params)`).
`tests/test_layout.py` resolves `dvc.yaml` (its `${...}` against params.yaml, its foreach stages expanded) and
fails when its outs, metrics or plots differ from `stage_outputs`. A new artifact is one entry here and its line
in dvc.yaml.

| stage | outs | metrics | plots |
|---|---|---|---|
| base | `artifacts/base/model` | | |
| inputs@KEY | `artifacts/inputs/KEY.json` | | |
| extract | `artifacts/extract/{pairs,unpaired,sft,rewards}.FORMAT`, `quarantine.jsonl`, `signals.md`, `signals_detail.json` | `signals.json` | |
| train | `artifacts/train/adapter`, `artifacts/train/merged`, `artifacts/train/steps` | `metrics.json` | `curve.csv` |
| evaluate@WHICH | `artifacts/evaluate/WHICH/samples.jsonl` | `results.json` | |
| gate | `artifacts/gate/report.md` | `verdict.json` | |
"""

from __future__ import annotations

from typing import Any, Mapping

ARTIFACTS = "artifacts"

BASE_MODEL = f"{ARTIFACTS}/base/model"

INPUTS = f"{ARTIFACTS}/inputs"

EXTRACT = f"{ARTIFACTS}/extract"
SETS = ("pairs", "unpaired", "sft", "rewards")  # the training sets, each written in extract.format
FORMATS = ("jsonl", "parquet")
DEFAULT_FORMAT = "jsonl"
QUARANTINE = f"{EXTRACT}/quarantine.jsonl"
SIGNALS_MD = f"{EXTRACT}/signals.md"
SIGNALS_DETAIL = f"{EXTRACT}/signals_detail.json"  # the whole signals report
SIGNALS = f"{EXTRACT}/signals.json"  # its key counts, DVC's metric; written last

TRAIN = f"{ARTIFACTS}/train"
ADAPTER = f"{TRAIN}/adapter"
MERGED = f"{TRAIN}/merged"  # the candidate's weights, the model a promotion registers
TRAIN_METRICS = f"{TRAIN}/metrics.json"
CURVE = f"{TRAIN}/curve.csv"
TRAIN_STEPS = f"{TRAIN}/steps"  # a recipe's earlier steps (<i>-<method>/) and recipe.json, the summary of every step
RECIPE = f"{TRAIN_STEPS}/recipe.json"
TRAIN_TIMINGS = f"{TRAIN}/timings.json"  # wall-clock seconds: no DVC output and git-ignored, so no digest holds a time

EVALUATE = f"{ARTIFACTS}/evaluate"
MODELS = {"incumbent": BASE_MODEL, "candidate": MERGED}  # evaluate's foreach: who -> the weights evaluated

GATE = f"{ARTIFACTS}/gate"
REPORT = f"{GATE}/report.md"
VERDICT = f"{GATE}/verdict.json"


def extract_format(params: Mapping[str, Any] | str | None) -> str:
    """params.yaml's extract.format (or the format itself); jsonl when absent, as in params written before it."""
    if isinstance(params, str):
        fmt = params
    else:
        fmt = ((params or {}).get("extract") or {}).get("format") or DEFAULT_FORMAT
    if fmt not in FORMATS:
        raise ValueError(f"extract.format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def extract_set(name: str, params: Mapping[str, Any] | str | None) -> str:
    """One training set's file: artifacts/extract/NAME.FORMAT."""
    return f"{EXTRACT}/{name}.{extract_format(params)}"


def pairs(params: Mapping[str, Any] | str | None) -> str:
    """The preference pairs the candidate was trained on (the dataset a promotion registers)."""
    return extract_set("pairs", params)


def extract_outputs(params: Mapping[str, Any] | str | None) -> tuple[str, ...]:
    """The extract stage's files: the training sets, the quarantine, the signals report, signals.json last."""
    return (*(extract_set(s, params) for s in SETS), QUARANTINE, SIGNALS_MD, SIGNALS_DETAIL, SIGNALS)


def input_manifest(key: str) -> str:
    """The manifest of one log path (params.yaml's data.sources[key])."""
    return f"{INPUTS}/{key}.json"


def samples(which: str) -> str:
    return f"{EVALUATE}/{which}/samples.jsonl"


def results(which: str) -> str:
    return f"{EVALUATE}/{which}/results.json"


def stage_outputs(params: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """What each stage writes, as dvc.yaml declares it: stage (foreach ones as `name@key`) -> outs, metrics, plots."""
    stages: dict[str, dict[str, list[str]]] = {
        "base": {"outs": [BASE_MODEL], "metrics": [], "plots": []},
    }
    for key in ((params.get("data") or {}).get("sources") or {}):
        stages[f"inputs@{key}"] = {"outs": [input_manifest(key)], "metrics": [], "plots": []}
    *sets, signals = extract_outputs(params)
    stages["extract"] = {"outs": sets, "metrics": [signals], "plots": []}
    stages["train"] = {"outs": [ADAPTER, MERGED, TRAIN_STEPS], "metrics": [TRAIN_METRICS], "plots": [CURVE]}
    for which in MODELS:
        stages[f"evaluate@{which}"] = {"outs": [samples(which)], "metrics": [results(which)], "plots": []}
    stages["gate"] = {"outs": [REPORT], "metrics": [VERDICT], "plots": []}
    return stages
