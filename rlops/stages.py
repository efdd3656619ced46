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
    from rlops.train.parent import materialize

    materialize(params, root, root / BASE_MODEL)


def extract(root: Path, params: dict[str, Any]) -> None:
    from rlops.extract.run import run

    run(params, root, root / EXTRACT)


def train(root: Path, params: dict[str, Any]) -> None:
    """Run the spec's method, or each step of its recipe in order, looked up in the registry (rlops/train/methods.py).

    The first step starts from the parent checkpoint, each later one from the previous step's merged weights. The
    last step writes the candidate (artifacts/train); earlier ones artifacts/train/steps/<i>-<method>/; recipe.json
    sums them up. Timings go to artifacts/train/timings.json, which is no DVC output (git ignores it): every output
    stays the same bytes for the same inputs, so two identical runs get the same dvc.lock digests."""
    import shutil
    import time

    from rlops import settings
    from rlops.io import atomic_write_json
    from rlops.train import methods
    from rlops.train.common import TrainContext
    from rlops.train.runtime import Runtime

    steps = methods.steps(params["train"])
    typed = []
    for i, step in enumerate(steps):  # every step's settings are read before the first one trains
        where = "train" if len(steps) == 1 else f"train.steps[{i}]"
        method = methods.get(step["method"])
        typed.append((method, settings.read(method.settings, step, where,
                                            hint="set it in the cycle spec and run `rlops plan` again")))
    inputs = {s: Path(f) for m, _ in typed for s, f in methods.input_files(m, params).items()}
    _require(root, BASE_MODEL, *inputs.values())
    rt = Runtime.from_mapping(params["runtime"])
    rt.apply()
    shutil.rmtree(root / layout.TRAIN_STEPS, ignore_errors=True)  # no step of an earlier recipe may look like this one's
    started, start, summary, timings = time.perf_counter(), root / BASE_MODEL, [], {}
    for i, (method, step_settings) in enumerate(typed, 1):
        out = methods.step_dir(i, method.name, last=i == len(typed))
        ctx = TrainContext(params=params, root=root, settings=step_settings, runtime=rt, seed=int(params["seed"]),
                           start=start, inputs={s: root / inputs[s] for s in method.sets}, out_dir=root / out,
                           label="train" if len(typed) == 1 else f"train {i}-{method.name}")
        metrics = method.function(ctx)
        summary.append({"step": i, "method": method.name, "start": start.relative_to(root).as_posix(), "out": out,
                        "metrics": metrics})
        timings[f"{i}-{method.name}"] = ctx.timings
        if method.policy:  # a reward model is no policy: the step after it starts where it started
            start = root / out / "merged"
    atomic_write_json(root / layout.RECIPE, {"steps": summary})
    atomic_write_json(root / layout.TRAIN_TIMINGS, {"seconds": round(time.perf_counter() - started, 1),
                                                     "steps": timings})


def evaluate(root: Path, params: dict[str, Any], which: str) -> None:
    from rlops.errors import InvalidInput, Problem

    if which not in MODELS:
        raise InvalidInput([Problem("command line", None, "", f"evaluate takes one of {', '.join(MODELS)}, not '{which}'")])
    from rlops.evaluate.harness import evaluate as run_eval

    _require(root, MODELS[which])
    run_eval(params, root, which, root / MODELS[which], root / EVALUATE / which)


def judge(root: Path, params: dict[str, Any]) -> None:
    from rlops.evaluate.judge import judged_gates, run

    if judged_gates(params):
        _require(root, *(Path(layout.samples(w)) for w in MODELS))
    run(params, root)


def gate(root: Path, params: dict[str, Any]) -> None:
    from rlops import gate as gates
    from rlops import gate_report as reports
    from rlops.evaluate.suites import read_items
    from rlops.io import atomic_write_json, atomic_write_text

    def load(path: str):
        return json.loads((root / path).read_text(encoding="utf-8"))

    evidence = [Path(f(w)) for w in MODELS for f in (layout.samples, layout.results)]
    _require(root, *evidence, Path(layout.SIGNALS_DETAIL), Path(layout.SIGNALS_MD), Path(layout.TRAIN_METRICS),
             Path(layout.CURVE))

    cand = read_items(root / layout.samples("candidate"))
    inc = read_items(root / layout.samples("incumbent"))
    judgments = read_items(root / layout.JUDGMENTS) if (root / layout.JUDGMENTS).is_file() else []
    verdict = gates.decide(params["gate"]["rules"], cand, inc, params["gate"]["bootstrap"],
                           judgments=judgments).to_json()
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


STAGES = {"base": base, "extract": extract, "train": train, "evaluate": evaluate, "judge": judge, "gate": gate}


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
