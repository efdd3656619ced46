"""The DVC stages: each reads params.yaml, calls one function of the package and writes its declared outputs.

`pipelines/<stage>.py` are the thin entry points that dvc.yaml runs; every path comes from rlops/layout.py, and
tests/test_layout.py checks dvc.yaml against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rlops import layout

BASE_MODEL = Path(layout.BASE_MODEL)
EXTRACT = Path(layout.EXTRACT)
TRAIN = Path(layout.TRAIN)
EVALUATE = Path(layout.EVALUATE)
GATE = Path(layout.GATE)
MODELS = {which: Path(path) for which, path in layout.MODELS.items()}


def _params(root: Path) -> dict[str, Any]:
    import yaml

    from rlops.errors import StageFailed

    path = root / "params.yaml"
    if not path.is_file():
        raise StageFailed("params.yaml not found", hint="run `rlops plan specs/cycles/<cycle>.yaml` first")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _require(root: Path, *paths: Path) -> None:
    """Refuse to start when an input is missing, before anything is written."""
    from rlops.errors import StageFailed

    missing = [str(p) for p in paths if not (root / p).exists()]
    if missing:
        raise StageFailed(f"missing input: {', '.join(missing)}",
                          hint="run `dvc repro`, which runs the stages that produce it first")


def base(root: Path, params: dict[str, Any]) -> None:
    from rlops.train.base import materialize

    materialize(params, root, root / BASE_MODEL)


def extract(root: Path, params: dict[str, Any]) -> None:
    from rlops.extract.run import run

    run(params, root, root / EXTRACT)


def train(root: Path, params: dict[str, Any]) -> None:
    from rlops.errors import InvalidInput, Problem

    method = params["train"]["method"]
    if method != "dpo":
        raise InvalidInput([Problem("params.yaml", None, "train.method", f"'{method}' is not implemented; available: dpo")])
    from rlops.train.dpo import train as train_dpo

    pairs = Path(layout.pairs(params))
    _require(root, BASE_MODEL, pairs)
    train_dpo(params, root, root / BASE_MODEL, root / pairs, root / TRAIN)


def evaluate(root: Path, params: dict[str, Any], which: str) -> None:
    from rlops.errors import InvalidInput, Problem

    if which not in MODELS:
        raise InvalidInput([Problem("command line", None, "", f"evaluate takes one of {', '.join(MODELS)}, not '{which}'")])
    from rlops.evaluate.run import evaluate as run_eval

    _require(root, MODELS[which])
    run_eval(params, root, which, root / MODELS[which], root / EVALUATE / which)


def gate(root: Path, params: dict[str, Any]) -> None:
    from rlops import gate as gates
    from rlops import report as reports
    from rlops.evaluate.suites import read_items
    from rlops.io import atomic_write_json, atomic_write_text

    def load(path: str):
        return json.loads((root / path).read_text(encoding="utf-8"))

    evidence = [Path(f(w)) for w in MODELS for f in (layout.samples, layout.results)]
    _require(root, *evidence, Path(layout.SIGNALS_DETAIL), Path(layout.SIGNALS_MD), Path(layout.TRAIN_METRICS),
             Path(layout.CURVE))

    cand = read_items(root / layout.samples("candidate"))
    inc = read_items(root / layout.samples("incumbent"))
    verdict = gates.decide(params["gate"]["rules"], cand, inc, params["gate"]["bootstrap"]).to_json()
    verdict["cycle"] = params["cycle"]["number"]
    verdict["policy"] = params["cycle"]["policy"]
    results = {w: load(layout.results(w)) for w in MODELS}
    signals = load(layout.SIGNALS_DETAIL)
    # the plots' rows first (DVC plots reads them), then the PNGs drawn from the same rows, then the report
    scores, data = reports.score_rows(results["incumbent"], results["candidate"]), reports.data_rows(signals)
    atomic_write_text(root / layout.SCORES_CSV, reports.csv_text(scores, reports.SCORE_FIELDS))
    atomic_write_text(root / layout.DATA_CSV, reports.csv_text(data, reports.DATA_FIELDS))
    reports.draw_plots(root, params, verdict, scores, data, (root / layout.CURVE).read_text(encoding="utf-8"))
    report = reports.render(params, verdict, results["incumbent"], results["candidate"], signals,
                            load(layout.TRAIN_METRICS), (root / layout.SIGNALS_MD).read_text(encoding="utf-8"),
                            samples={"incumbent": inc, "candidate": cand}, plots=True)
    atomic_write_text(root / layout.REPORT, report)
    atomic_write_json(root / layout.VERDICT, verdict)
    for g in verdict["gates"]:
        print(f"gate: {'pass' if g['passed'] else 'FAIL'} {g['metric']} {g['rule']}: {g['reason']}", flush=True)
    print(f"gate: verdict {verdict['decision'].upper()} -> {layout.VERDICT}, {layout.REPORT}", flush=True)


STAGES = {"base": base, "extract": extract, "train": train, "evaluate": evaluate, "gate": gate}


def main(name: str, argv: list[str] | None = None) -> int:
    """Run one stage from the repository root (DVC's working directory) and return its exit code."""
    from rlops.cli import report_errors

    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args
    args = [a for a in args if a != "--traceback"]

    def call() -> int:
        root = Path.cwd()
        STAGES[name](root, _params(root), *args)
        return 0

    return report_errors(call, prog=f"rlops stage {name}", traceback=traceback)
