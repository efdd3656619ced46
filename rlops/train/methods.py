"""The train methods, chosen by name: the component registry's `method` kind (rlops/components.py), and what
`rlops plan` checks about a method before any stage runs. Light: no torch, transformers or trl import.

A method is one module, `rlops/train/<name>.py`, that registers a `components.Method`:

| field         | what                                                                                      |
|---------------|-------------------------------------------------------------------------------------------|
| `name`        | what a spec writes: `train: {method: NAME}`                                               |
| `settings`    | its typed settings (a `settings.TrainSettings`), defaults in pipelines/conf/method/NAME.yaml |
| `sets`        | the extracted sets it reads: pairs, unpaired, sft, rewards, prompts                       |
| `trl_config`  | "module:Class" of the TRL config its settings pass into, e.g. "trl.trainer.dpo_config:DPOConfig" |
| `function`    | `run(ctx: common.TrainContext) -> dict` (its metrics), the shared work in rlops/train/common.py |

plus its line in `components.BUILTIN["method"]` and its test. The schema's `train.method` enum, the generated conf
file, the README table, dvc.yaml's train dependencies (every set: see `INPUT_SETS`) and the report follow from it.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rlops import components, layout

# the sets a method may read: extract's four files, and `prompts` (the prompt of every row of any of them)
SETS = (*layout.SETS, "prompts")

# which extract rules write which sets (rlops/extract/rules.py's table); `prompts` comes with any set
WRITES: dict[str, tuple[str, ...]] = {
    "edit": ("pairs", "sft"),  # sft only with extract.edit_sft
    "pairwise": ("pairs",),
    "ranking": ("pairs",),
    "rating": ("pairs", "unpaired"),
    "implicit": ("pairs", "unpaired"),
    "outcome": ("pairs", "rewards"),
    "judge": ("pairs", "unpaired"),
}

# TrainingArguments keys the train stage sets from runtime, seed and its own layout: a spec cannot set them
MANAGED = ("output_dir", "seed", "data_seed", "bf16", "fp16", "use_cpu", "report_to", "save_strategy",
           "resume_from_checkpoint", "disable_tqdm", "dataloader_num_workers", "logging_dir")


def steps(train: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The train section's steps: a recipe's `steps`, or the one method's section itself."""
    return list(train["steps"]) if "steps" in train else [train]


def step_dir(i: int, method: str, last: bool) -> str:
    """Where step `i` (from 1) writes: the last step is the candidate (artifacts/train), earlier ones under
    artifacts/train/steps/<i>-<method>/."""
    return layout.TRAIN if last else f"{layout.TRAIN_STEPS}/{i}-{method}"


def get(name: str) -> components.Method:
    return components.get("method", name)  # type: ignore[return-value]


def names() -> list[str]:
    return components.names("method")


def sets_written(extract: Mapping[str, Any]) -> set[str]:
    """The sets extraction can fill for these extract settings (a set not here is always empty)."""
    out: set[str] = set()
    for signal in extract.get("signals") or []:
        for s in WRITES.get(signal, ()):
            if s != "sft" or extract.get("edit_sft", True):
                out.add(s)
    return out | ({"prompts"} if out else set())


def input_files(method: components.Method, params: Mapping[str, Any]) -> dict[str, str]:
    """set name -> the extract file the method reads it from (`prompts` reads every set's prompts: the pairs file)."""
    return {s: layout.extract_set("pairs" if s == "prompts" else s, params) for s in method.sets}


@functools.lru_cache(maxsize=None)
def trl_fields(trl_config: str) -> frozenset[str]:
    """The dataclass fields of a TRL config class ("module:Class"), read from its source without importing trl
    (light commands must stay light): the class's annotated fields and its bases', down to TrainingArguments."""
    module, cls = trl_config.split(":")
    return frozenset(_class_fields(module, cls))


def _source(module: str) -> Path | None:
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)  # a top-level package is located without running its __init__
    if spec is None or spec.origin is None:
        return None
    base = Path(spec.origin).parent.joinpath(*rest)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


# names a package re-exports lazily (an AST cannot follow transformers' lazy __init__)
_KNOWN = {"TrainingArguments": "transformers.training_args"}


def _class_fields(module: str, cls: str) -> set[str]:
    path = _source(module)
    if path is None:
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            package = module.rsplit(".", node.level)[0] if node.level else ""
            source = ".".join(p for p in (package, node.module or "") if p)
            for alias in node.names:
                imports[alias.asname or alias.name] = source
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            fields = {s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
            for base in node.bases:
                if isinstance(base, ast.Name):
                    where = _KNOWN.get(base.id) or imports.get(base.id)
                    if where:
                        fields |= _class_fields(where, base.id)
            return fields
    return set()


def problems(params: Mapping[str, Any], bad: Callable[[tuple, str], None], prefix: tuple = ("train",)) -> None:
    """Every problem of params' train section (or one recipe step at `prefix`) a stage would hit later: the method,
    its settings, its TRL keys and the sets it reads."""
    from rlops import settings

    train = _at(params, prefix)
    if not isinstance(train, Mapping):
        return
    if prefix == ("train",) and "steps" in train:  # a recipe: each step is checked as a method of its own
        steps = train["steps"]
        if not isinstance(steps, list) or not steps:
            bad((*prefix, "steps"), "must be a list of steps, each {method: NAME, overrides: {...}}")
            return
        for i in range(len(steps)):
            problems(params, bad, (*prefix, "steps", i))
        return
    method = train.get("method")
    if method not in names():
        bad((*prefix, "method"), f"{method!r} is not a method the train stage runs; available: {', '.join(names())} "
                                 "(choose it with the spec's train.method, not a train.method= override)")
        return
    m = get(method)
    for path, _, message in settings.problems(m.settings, train):
        bad((*prefix, *path), message)
    known = trl_fields(m.trl_config) if m.trl_config else frozenset()
    extra = train.get("trl")
    if known and isinstance(extra, Mapping):
        for key in extra:
            if key in MANAGED or key in m.settings.model_fields:
                bad((*prefix, "trl", key), f"rlops sets {key} itself ({'from runtime, seed or the layout' if key in MANAGED else f'from {prefix[-1]}.{key}'}); "
                                           "remove it from trl")
            elif key not in known:
                bad((*prefix, "trl", key), f"{m.trl_config.split(':')[1]} (TRL) has no key {key!r}; see its "
                                           "documentation for the keys it takes, or remove it")
    extract = params.get("extract") if isinstance(params.get("extract"), Mapping) else {}
    written = sets_written(extract)
    for s in m.sets:
        if s not in written:
            bad((*prefix, "method"), f"{method} reads the {s} set, which this spec's extraction does not produce "
                                     f"(extract.signals: {', '.join(extract.get('signals') or [])}); add a signal that "
                                     f"writes it ({', '.join(k for k, v in WRITES.items() if s in v) or 'any'}) to "
                                     "extract.signals, or choose another method")


def _at(params: Mapping[str, Any], path: tuple) -> Any:
    node: Any = params
    for key in path:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return None
    return node
