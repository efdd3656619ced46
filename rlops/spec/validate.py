"""`rlops validate`: load specs and logs, check them against their schemas and against the repository.

Every check collects its problems instead of stopping at the first, so one run lists everything to fix.
Imports nothing heavy (no torch, transformers, trl, lm_eval or dvc): it runs on every commit and in CI.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any, Iterator

from rlops import settings
from rlops.errors import InvalidInput, Problem
from rlops.spec import schema
from rlops.spec.yamlload import Loaded, field_path, load_yaml, relative_name, short_name

POLICY_FILE = Path("specs") / "policy.yaml"
EVALS_DIR = Path("specs") / "evals"
MODEL_CONF_DIR = Path("pipelines") / "conf" / "model"
CONF_FILE = Path("pipelines") / "conf" / "config.yaml"
YAML_SUFFIXES = {".yaml", ".yml"}
LOG_SUFFIXES = {".jsonl"}
MAX_LOG_PROBLEMS = 100  # per log file; the rest are counted, so a broken 1 GB log stays readable

_SLUG = re.compile(r"[a-z][a-z0-9-]*\Z")
_MODEL = re.compile(r"[a-z][a-z0-9._-]*\Z")
_VERSION = re.compile(r"([a-z][a-z0-9-]*)@v[1-9][0-9]*\Z")
_RECORD_SCHEMA = re.compile(r"rlops\.([a-z][a-z0-9_-]*)/v([0-9]+)\Z")


# -- public API ------------------------------------------------------------------------------------------------


def load_spec(path: Path, root: Path) -> Loaded:
    """Load a cycle spec, check it (schema and repository); InvalidInput lists every problem.

    Returns the Loaded document (`.data`, `.file`, `.line(field_path)`) so callers can point at lines too."""
    path, root = Path(path), Path(root)
    loaded = load_yaml(path, root)
    problems = check_cycle(loaded, path, root)
    if problems:
        raise InvalidInput(problems)
    return loaded


def load_policy(root: Path) -> Loaded:
    """Load and check root/specs/policy.yaml; InvalidInput lists every problem."""
    root = Path(root)
    loaded = load_yaml(root / POLICY_FILE, root)
    problems = check_policy(loaded, root)
    if problems:
        raise InvalidInput(problems)
    return loaded


def validate_paths(paths: list[Path], root: Path) -> list[Problem]:
    """Every problem in the given specs and logs; a directory means every *.yaml, *.yml and *.jsonl below it."""
    root = Path(root)
    problems: list[Problem] = []
    for path in _expand(paths, root, problems):
        problems.extend(validate_file(path, root))
    return sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field, p.message))


def validate_file(path: Path, root: Path) -> list[Problem]:
    """Problems in one file, recognised by its suffix and content: cycle spec, policy spec, eval suite or log."""
    path, root = Path(path), Path(root)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _validate_yaml(path, root)
    if suffix in LOG_SUFFIXES:
        return _validate_log(path, root)
    return [Problem(relative_name(path, root), None, "", "not a spec or log file: expected .yaml/.yml "
                    "(cycle, policy or eval suite spec) or .jsonl (interaction, feedback or preference records)")]


def check_cycle(loaded: Loaded, path: Path, root: Path) -> list[Problem]:
    """Problems in a loaded cycle spec: schema, declarative rules and consistency with the repository."""
    return cycle_structure(loaded) + cycle_semantics(loaded, path, root)


def cycle_structure(loaded: Loaded) -> list[Problem]:
    """Problems of form: not a mapping, `_target_` keys or interpolations, schema. None: the spec can be planned."""
    if not isinstance(loaded.data, dict):
        return [_not_mapping(loaded, "a cycle spec")]
    problems = _declarative(loaded)
    return problems + _schema_problems(loaded, "cycle", problems)


def cycle_semantics(loaded: Loaded, path: Path, root: Path) -> list[Problem]:
    """Problems of a well-formed cycle spec against the repository (file name, policy, paths, suites, gates)."""
    return _cycle_semantics(loaded, Path(path), Path(root)) if isinstance(loaded.data, dict) else []


def check_policy(loaded: Loaded, root: Path) -> list[Problem]:
    """Problems in a loaded policy spec: schema, declarative rules and that its base model config exists."""
    if not isinstance(loaded.data, dict):
        return [_not_mapping(loaded, "a policy spec")]
    problems = _declarative(loaded)
    problems += _schema_problems(loaded, "policy", problems)
    model = loaded.data.get("base_model")
    if isinstance(model, str) and _MODEL.match(model) and not (Path(root) / MODEL_CONF_DIR / f"{model}.yaml").is_file():
        known = sorted(p.stem for p in (Path(root) / MODEL_CONF_DIR).glob("*.yaml"))
        problems.append(_at(loaded, ("base_model",), f"no model config {model!r}: expected "
                            f"{(MODEL_CONF_DIR / model).as_posix()}.yaml; available: {', '.join(known) or 'none'}"))
    return problems


# -- the checks ------------------------------------------------------------------------------------------------


def _at(loaded: Loaded, path: tuple, message: str) -> Problem:
    return Problem(loaded.file, loaded.line(path), field_path(path), message)


def _not_mapping(loaded: Loaded, what: str) -> Problem:
    got = "an empty file" if loaded.data is None else f"a {type(loaded.data).__name__}"
    return _at(loaded, (), f"expected {what}: a mapping of keys, got {got}")


def _declarative(loaded: Loaded) -> list[Problem]:
    """A spec declares, it never executes: no `_target_`-style keys, no `${...}` interpolation."""
    problems: list[Problem] = []

    def walk(value: Any, path: tuple) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.startswith("_"):
                    problems.append(_at(loaded, path + (key,), f"key {key!r}: keys starting with '_' are reserved; "
                                        "rlops never instantiates code from a spec (choose a strategy by name, "
                                        "e.g. train.method: dpo)"))
                walk(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))
        elif isinstance(value, str) and "${" in value:
            problems.append(_at(loaded, path, f"{value[:40]!r}: '${{...}}' interpolation is not allowed in specs "
                                "(no OmegaConf resolvers); write the value itself"))

    walk(loaded.data, ())
    return problems


def _schema_problems(loaded: Loaded, name: str, already: list[Problem]) -> list[Problem]:
    """Schema problems, minus those at a field already refused (an `_target_` key is not also 'unknown')."""
    refused = {p.field for p in already}
    return [p for p in schema.check(loaded.data, name, loaded.file, loaded.line) if p.field not in refused]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _cycle_semantics(loaded: Loaded, path: Path, root: Path) -> list[Problem]:
    data, problems = loaded.data, []

    number = data.get("cycle")
    if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
        prefix = f"{number:04d}-"
        if not path.name.startswith(prefix):
            problems.append(_at(loaded, ("cycle",), f"cycle {number} belongs in a file named {prefix}<slug>.yaml, "
                                f"not {path.name}; rename the file or fix the number"))

    policy = data.get("policy")
    declared = _declared_policy(root, problems)
    if isinstance(policy, str) and declared is not None and policy != declared:
        problems.append(_at(loaded, ("policy",), f"policy {policy!r} does not match {POLICY_FILE.as_posix()}, "
                            f"which declares {declared!r}"))
    parent = data.get("parent")
    match = _VERSION.match(parent) if isinstance(parent, str) else None
    if match and isinstance(policy, str) and match.group(1) != policy:
        problems.append(_at(loaded, ("parent",), f"parent {parent!r} is a version of another policy; "
                            f"use base, production or {policy}@v<N>"))

    for key in ("interactions", "feedback"):
        value = _get(data, "feedback", key)
        listed = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for i, item in listed:
            if not isinstance(item, str) or not item:
                continue  # the schema reports it
            try:
                message = log_path_problem(item, root)
            except OSError as e:  # a name too long for the file system
                message = f"{short_name(item)!r} is not a usable path: {e.strerror or e}"
            if message:
                problems.append(_at(loaded, ("feedback", key) + (() if i is None else (i,)), message))
    # the checks between settings that a JSON Schema cannot express, from the settings models (rlops/settings.py);
    # a key the spec leaves out has its value from pipelines/conf/config.yaml
    extract = _get(data, "extract")
    given = extract if isinstance(extract, dict) else {}
    for path, kind, message in settings.problems(settings.ExtractSettings, {**_conf_extract(root), **given}):
        if kind == "cross_field" and given:  # on the key's line when the spec sets it, else on its extract's
            line = loaded.line(("extract", *path) if path[:1] and path[0] in given else ("extract",))
            problems.append(Problem(loaded.file, line, field_path(("extract", *path)), message))
    window = _get(data, "feedback", "window")
    for path, kind, message in settings.problems(settings.Window, window) if isinstance(window, dict) else []:
        if kind == "cross_field":
            problems.append(_at(loaded, ("feedback", "window", *(path or ("from",))), message))

    suites = _get(data, "evaluate", "suites")
    suites = suites if isinstance(suites, list) else []
    for i, suite in enumerate(suites):
        if isinstance(suite, str) and _SLUG.match(suite) and not (root / EVALS_DIR / suite / "suite.yaml").is_file():
            problems.append(_at(loaded, ("evaluate", "suites", i), f"no suite {suite!r}: expected "
                                f"{(EVALS_DIR / suite).as_posix()}/suite.yaml"))

    gates = data.get("gates")
    for i, gate in enumerate(gates if isinstance(gates, list) else []):
        metric = _get(gate, "metric")
        if isinstance(metric, str) and "." in metric:
            suite = metric.split(".", 1)[0]
            if suite not in suites:
                listed = ", ".join(s for s in suites if isinstance(s, str)) or "none"
                problems.append(_at(loaded, ("gates", i, "metric"), f"metric {metric!r} comes from suite {suite!r}, "
                                    f"which evaluate.suites does not list ({listed}); add it there or fix the metric"))
    return problems


def _conf_extract(root: Path) -> dict:
    """The extract defaults in pipelines/conf/config.yaml ({} when unreadable: plan reports that file)."""
    try:
        data = load_yaml(root / "pipelines" / "conf" / "config.yaml", root).data
    except InvalidInput:
        return {}
    section = data.get("extract") if isinstance(data, dict) else None
    return section if isinstance(section, dict) else {}


def _declared_policy(root: Path, problems: list[Problem]) -> str | None:
    """The `policy` name in specs/policy.yaml; when that file does not load, its problems join the cycle's."""
    try:
        loaded = load_yaml(root / POLICY_FILE, root)
    except InvalidInput as e:
        problems.extend(e.problems)
        return None
    name = _get(loaded.data, "policy")
    return name if isinstance(name, str) else None


def log_path_problem(value: str, root: Path) -> str | None:
    """Why `value` names no logs: a file, or a folder (searched for .jsonl/.parquet), inside the repository."""
    if any(c in value for c in "*?["):
        # DVC tracks files and folders, never a glob: `dvc repro` would fail on the extract stage's dependency
        return (f"{value!r} is a glob, which DVC cannot track as a dependency; name the folder instead (every "
                ".jsonl/.parquet file below it is read), or list the files: [a.jsonl, b.jsonl]")
    if (root / value).is_dir() and not (root / value).is_symlink():
        if not Path(os.path.normpath(root.resolve() / value)).is_relative_to(root.resolve()):
            return f"{value!r} points outside the repository; paths must stay inside it"
        logs = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".parquet")
        if not any(p.is_file() and p.name.lower().endswith(logs) for p in (root / value).rglob("*")):
            return f"{value!r} is a folder without .jsonl or .parquet logs"
        return None
    return _repo_path_problem(value, root)


def _repo_path_problem(value: str, root: Path) -> str | None:
    """Why `value` is not an existing file inside the repository, or None when it is."""
    if value.startswith("~"):
        return f"{value!r}: '~' is not expanded; write the path relative to the repository root"
    if PurePath(value).is_absolute() or PureWindowsPath(value).is_absolute() or PureWindowsPath(value).drive:
        return f"{value!r} is an absolute path; write it relative to the repository root, e.g. data/example/log.jsonl"
    try:
        top = root.resolve()
        lexical = Path(os.path.normpath(top / value))
        if not lexical.is_relative_to(top):
            return f"{value!r} points outside the repository; paths must stay inside it"
        real = (top / value).resolve()
        if not real.is_relative_to(top):
            return f"{value!r} is a symlink to {real}, outside the repository; paths must stay inside it"
        if not real.exists():
            return f"no such file: {value!r} (relative to the repository root)"
        if not real.is_file():
            return f"{value!r} is not a file"
    except (OSError, RuntimeError, ValueError) as e:  # symlink loops, NUL bytes
        return f"{value!r} is not a usable path: {e}"
    return None


def plan_problems(path: Path, root: Path) -> list[Problem]:
    """What `rlops plan SPEC` would refuse (composition with pipelines/conf, overrides, the resolved params), so
    `validate` and `plan` agree; nothing when the repository has no conf to compose with."""
    if not (Path(root) / CONF_FILE).is_file():
        return []
    from rlops.spec import compose  # it imports this module

    try:
        compose.plan(root, path, [])
    except InvalidInput as e:
        return list(e.problems)
    return []


# -- validate_paths --------------------------------------------------------------------------------------------


def _is_suite(path: Path) -> bool:
    return path.name == "suite.yaml" and _in_suite_folder(path)


def _is_cycle_place(path: Path) -> bool:
    return path.parent.name == "cycles" and path.parent.parent.name == "specs"


def _is_policy_place(path: Path) -> bool:
    return path.name == "policy.yaml" and path.parent.name == "specs"


def _in_suite_folder(path: Path) -> bool:
    return path.parent.parent.name == "evals" and path.parent.parent.parent.name == "specs"


def _exists(path: Path) -> tuple[bool, bool, str | None]:
    """(is a folder, exists, why it cannot be looked at): a name longer than the file system allows is an OSError."""
    try:
        return path.is_dir(), path.exists() or path.is_symlink(), None
    except OSError as e:
        return False, False, e.strerror or str(e)


def _expand(paths: list[Path], root: Path, problems: list[Problem]) -> Iterator[Path]:
    for path in map(Path, paths):
        is_dir, exists, why = _exists(path)
        if why:
            problems.append(Problem(short_name(relative_name(path, root)), None, "",
                                    f"cannot read: {why}; each name in a path may have at most 255 bytes"))
        elif is_dir:
            for found in sorted(path.rglob("*")):
                inner = found.relative_to(path).parts
                if any(part.startswith(".") or part == "__pycache__" for part in inner) or not found.is_file():
                    continue
                suffix = found.suffix.lower()
                # task files beside a suite.yaml belong to lm-eval (they may carry `!function`); its loader checks them
                if suffix in YAML_SUFFIXES and _in_suite_folder(found) and not _is_suite(found):
                    continue
                if suffix in YAML_SUFFIXES | LOG_SUFFIXES:
                    yield found
        elif exists:
            yield path
        else:
            problems.append(Problem(relative_name(path, root), None, "", "no such file or directory"))


def _validate_yaml(path: Path, root: Path) -> list[Problem]:
    try:
        loaded = load_yaml(path, root)
    except InvalidInput as e:
        return list(e.problems)
    data = loaded.data
    if _is_suite(path):
        return [] if isinstance(data, dict) else [_not_mapping(loaded, "an eval suite")]
    # where a file lives decides first, so a misspelt key in specs/cycles/ is reported, not mistaken for "no spec"
    if _is_cycle_place(path) or (isinstance(data, dict) and "cycle" in data):
        structure = cycle_structure(loaded)  # a spec of the right form is planned: plan reports the rest, all at once
        if structure or not (root / CONF_FILE).is_file():
            return structure + cycle_semantics(loaded, path, root)
        return plan_problems(path, root)
    if _is_policy_place(path) or (isinstance(data, dict) and "base_model" in data):
        return check_policy(loaded, root)
    return [_at(loaded, (), "not a spec or log file: a cycle spec has a top-level 'cycle' key, a policy spec a "
                "'base_model' key, and an eval suite lives at specs/evals/<suite>/suite.yaml")]


def record_schema(record: dict) -> tuple[str | None, str | None]:
    """(schema name, problem) for one log record: its "schema" field, else its shape (chosen/rejected: preference)."""
    declared = record.get("schema")
    if isinstance(declared, str):
        match = _RECORD_SCHEMA.match(declared)
        if match and match.group(2) == "1":
            return match.group(1), None
        if match or declared.startswith("rlops."):
            return None, f"unknown record schema {declared!r}; this rlops reads rlops.<kind>/v1"
    if "chosen" in record or "rejected" in record:
        return "preference", None
    return None, None


def _parse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; write null or a number")


def _record_problems(raw: bytes, number: int, offset: int, file: str) -> list[Problem]:
    def at(message: str, field: str = "") -> list[Problem]:
        return [Problem(file, number, field, message)]

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return at(f"not valid UTF-8 at byte {offset + e.start}; save the file as UTF-8")
    if not text.strip():
        return []  # blank lines carry no record
    try:
        record = json.loads(text, parse_constant=_parse_constant)
    except json.JSONDecodeError as e:
        return at(f"not valid JSON: {e.msg} (column {e.colno}); each line must be one JSON object")
    except (ValueError, RecursionError) as e:
        return at(f"not valid JSON: {e}")
    if not isinstance(record, dict):
        return at(f"expected a JSON object, got {type(record).__name__ if record is not None else 'null'}")
    name, problem = record_schema(record)
    if problem:
        return at(problem, "schema")
    if name is None or not schema.has_schema(name):
        return []  # no schema to hold it to (yet): being valid JSON is all we can check
    return schema.check(record, name, file, lambda _path: number)


def _validate_log(path: Path, root: Path) -> list[Problem]:
    file = relative_name(path, root)
    problems: list[Problem] = []
    hidden, first_hidden = 0, None
    try:
        with open(path, "rb") as lines:
            offset = 0
            for number, raw in enumerate(lines, 1):
                found = _record_problems(raw, number, offset, file)
                offset += len(raw)
                if len(problems) + len(found) <= MAX_LOG_PROBLEMS:
                    problems.extend(found)
                elif found:
                    hidden += len(found)
                    first_hidden = first_hidden or number
    except OSError as e:
        return [Problem(file, None, "", f"cannot read: {e.strerror or e}")]
    if hidden:
        problems.append(Problem(file, first_hidden, "", f"{hidden} more problems from this line on "
                                f"(only the first {MAX_LOG_PROBLEMS} are listed)"))
    return problems
