"""`rlops plan`: compose a cycle spec with the Hydra config groups in pipelines/conf/ into params.yaml.

Hydra at the edge: its compose API picks the config groups and its override grammar parses command-line
overrides; what comes out is plain data written to params.yaml, which DVC tracks key by key.
Precedence: conf defaults < cycle spec < command-line overrides.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from rlops.errors import InvalidInput, Problem, StaleParams
from rlops.spec import checks
from rlops.spec.validate import cycle_semantics, cycle_structure, load_policy
from rlops.spec.yamlload import field_path, load_yaml

CONF_DIR = Path("pipelines") / "conf"
PARAMS = "params.yaml"
GROUPS = {"model", "method", "runtime", "evaluate"}  # config groups a `group=option` override selects
SECTIONS = ("plan", "cycle", "policy", "data", "extract", "model", "train", "runtime", "evaluate", "judge", "gate",
            "seed")


def _parse_overrides(overrides: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as e:
        raise InvalidInput([Problem("command line", None, "", str(e).splitlines()[0])],
                           hint="overrides look like `model=tiny` or `train.beta=0.2`") from None
    groups, values = {}, []
    for o in parsed:
        if o.is_sweep_override():
            raise InvalidInput([Problem("command line", None, o.input_line, "sweeps are not supported by `rlops plan`")])
        if o.key_or_group in GROUPS and o.type.name == "CHANGE" and isinstance(o.value(), str):
            groups[o.key_or_group] = o.value()
        else:
            values.append(o)
    return groups, values


def _compose(root: Path, groups: dict[str, str]) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf import OmegaConf

    conf = (root / CONF_DIR).resolve()
    if not (conf / "config.yaml").is_file():
        raise InvalidInput([Problem(str(CONF_DIR / "config.yaml"), None, "", "not found")],
                           hint="run rlops from the repository root")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("config", overrides=[f"{g}={o}" for g, o in sorted(groups.items())])
    except (MissingConfigException, HydraException) as e:
        group = next((g for g in groups if f"'{g}" in str(e) or f"{g}/" in str(e)), None)
        known = sorted(p.stem for p in (conf / group).glob("*.yaml")) if group else []
        raise InvalidInput([Problem(str(CONF_DIR / (group or "")), None, group or "", str(e).splitlines()[0])],
                           hint=f"choose one of: {', '.join(known)}" if known else None) from None
    finally:
        GlobalHydra.instance().clear()
    return OmegaConf.to_container(cfg, resolve=True)


def _set_override(params: dict[str, Any], o, file: str) -> Problem | None:
    """Apply one `a.b.c=value` override; refuse keys that do not exist (typos) unless `+`-prefixed."""
    *parents, leaf = o.key_or_group.split(".")
    if (parents[0] if parents else leaf) not in SECTIONS:
        return Problem(file, None, o.key_or_group, f"no such section; params.yaml has: {', '.join(SECTIONS)}")
    node = params
    for k in parents:
        if not isinstance(node.get(k), dict):
            if o.type.name != "ADD":
                return Problem(file, None, o.key_or_group, f"no such setting ('{k}' is not a section)")
            node[k] = {}
        node = node[k]
    if o.type.name == "DEL":
        node.pop(leaf, None)
        return None
    if leaf not in node and o.type.name != "ADD":
        known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
        return Problem(file, None, o.key_or_group, f"no such setting; known here: {known}; prefix with + to add a new key")
    node[leaf] = o.value()
    return None


def _apply_mapping(section: dict[str, Any], overrides: dict[str, Any], spec_file: str, field: str, line) -> list[Problem]:
    problems = []
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = section
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        free = parents == ["trl"] and isinstance(node, dict)  # train.trl: keys of the TRL config, checked by plan
        # a mapping setting (e.g. train.judge) is replaced whole by a mapping, or reached key by key with dots
        if not free and (not isinstance(node, dict) or leaf not in node
                         or (isinstance(node[leaf], dict) and not isinstance(value, dict))):
            known = ", ".join(sorted(k for k, v in section.items() if not isinstance(v, dict)))
            problems.append(Problem(spec_file, line((*field.split("."), key)), f"{field}.{key}",
                                    f"not a setting here; known: {known}"))
            continue
        node[leaf] = value
    return problems


def _recipe(root: Path, steps: list[dict[str, Any]], spec_file: str, line) -> tuple[dict[str, Any], list[Problem]]:
    """params.yaml's train section for a recipe: `method` names the chain (sft+dpo), `steps` holds each step's
    whole settings (its method's conf file, then the step's overrides)."""
    problems: list[Problem] = []
    out = []
    for i, step in enumerate(steps):
        conf = root / CONF_DIR / "method" / f"{step['method']}.yaml"
        if not conf.is_file():
            problems.append(Problem(spec_file, line(("train", "steps", i, "method")), f"train.steps[{i}].method",
                                    f"no method {step['method']!r} ({conf.relative_to(root).as_posix()} is missing)"))
            continue
        values = load_yaml(conf, root).data or {}
        problems += _apply_mapping(values, step.get("overrides", {}), spec_file, f"train.steps.{i}.overrides", line)
        out.append(values)
    return {"method": "+".join(str(s["method"]) for s in steps), "steps": out}, problems


def _default_choice(root: Path, group: str) -> str | None:
    """The file config.yaml's defaults list picks for `group` (e.g. runtime: cpu)."""
    try:
        data = load_yaml(root / CONF_DIR / "config.yaml", root).data
    except InvalidInput:
        return None
    entries = data.get("defaults") if isinstance(data, dict) else None
    return next((e[group] for e in entries or [] if isinstance(e, dict) and group in e), None)


def _origin(root: Path, spec, groups: dict[str, str], values, choice: dict[str, str], parent_model) -> checks.Where:
    """Where a value of params.yaml came from: the command line, the spec (with its line) or a conf file."""
    cli = {o.key_or_group.lstrip("+~") for o in values}
    data, spec_file = spec.data, spec.file

    def conf_line(group: str, path: tuple) -> tuple[str, int | None, str]:
        name = choice.get(group) or _default_choice(root, group)
        file = root / CONF_DIR / group / f"{name}.yaml"
        try:
            loaded = load_yaml(file, root)
            return loaded.file, loaded.line(path[1:]), field_path(path)
        except InvalidInput:
            return (CONF_DIR / group / f"{name}.yaml").as_posix(), None, field_path(path)

    def config_line(path: tuple) -> tuple[str, int | None, str]:
        try:
            loaded = load_yaml(root / CONF_DIR / "config.yaml", root)
            return loaded.file, loaded.line(path), field_path(path)
        except InvalidInput:
            return (CONF_DIR / "config.yaml").as_posix(), None, field_path(path)

    def in_spec(*path) -> tuple[str, int | None, str]:
        return spec_file, spec.line(path), field_path(path)

    def where(path: tuple) -> tuple[str, int | None, str]:
        keys = [str(p) for p in path]
        if any(".".join(keys[:n]) in cli for n in range(1, len(keys) + 1)):
            return "command line", None, field_path(path)
        section, rest = path[0], tuple(path[1:])
        if section == "model":
            if "model" in groups:
                return "command line", None, field_path(path)
            return in_spec("parent") if parent_model is not None else conf_line("model", path)
        if section == "train":
            overrides = data["train"].get("overrides") or {}
            for n in range(len(rest), 0, -1):  # a dotted override (trl.lr_scheduler_type) names a nested value
                if ".".join(map(str, rest[:n])) in overrides:
                    return in_spec("train", "overrides", ".".join(map(str, rest[:n])))
            if rest[:1] == ("steps",) and len(rest) > 1 and isinstance(rest[1], int):
                step = (data["train"].get("steps") or [{}])[rest[1]] if rest[1] < len(data["train"].get("steps") or []) else {}
                key = ".".join(map(str, rest[2:]))
                if key in (step.get("overrides") or {}):
                    return in_spec("train", "steps", rest[1], "overrides", key)
                return in_spec("train", "steps", rest[1], "method")
            if rest == ("method",):
                return in_spec("train", "steps") if data["train"].get("steps") else in_spec("train", "method")
            return conf_line("method", path) if "method" not in groups else ("command line", None, field_path(path))
        if section == "gate" and rest[:1] == ("rules",):
            return in_spec("gates", *rest[1:])
        if section == "data" and rest:
            return in_spec("feedback", *rest)
        if section == "evaluate" and rest[:1] == ("suites",):
            return in_spec("evaluate", *rest)
        if section == "evaluate" and rest and rest[0] in (data["evaluate"].get("overrides") or {}):
            return in_spec("evaluate", "overrides", rest[0])
        if section == "extract" and rest and rest[0] in (data.get("extract") or {}):
            return in_spec("extract", *rest)
        if section in ("evaluate", "runtime") and section not in groups:
            return conf_line(section, path)
        if section == "extract":
            return config_line(path)
        return PARAMS, None, field_path(path)

    return where


def sources(data: dict[str, Any]) -> dict[str, Any]:
    """data.sources: every log path as `<stream>-<n>` -> path, one DVC dependency each (dvc.yaml's `inputs` stage
    iterates over it: DVC cannot template a list into a stage's deps)."""
    out: dict[str, Any] = {}
    for stream in ("interactions", "feedback"):
        value = data.get(stream)
        for n, path in enumerate(value if isinstance(value, list) else [value], 1):
            out[f"{stream}-{n}"] = path
    return out


def plan(root: Path, spec_path: Path, overrides: list[str]) -> tuple[dict[str, Any], str]:
    """Return the resolved params and the exact text of params.yaml for this spec and overrides."""
    root = Path(root)
    spec_path = Path(spec_path)
    full = spec_path if spec_path.is_absolute() else root / spec_path
    lines = load_yaml(full, root)
    structure = cycle_structure(lines)
    if structure:  # a spec of the wrong form cannot be composed: report its form and its references, nothing more
        raise InvalidInput(structure + cycle_semantics(lines, full, root))
    # a spec of the right form is composed even when it names something missing, so the problems of the resolved
    # params come in the same run as the spec's own
    semantic = cycle_semantics(lines, full, root)
    try:
        return _plan(root, lines, overrides, semantic)
    except InvalidInput as e:
        raise InvalidInput(semantic + [p for p in e.problems if p not in semantic], hint=e.hint) from None
    except Exception:
        if not semantic:
            raise
        raise InvalidInput(semantic) from None  # what the spec names is missing, so its params cannot be resolved


def _plan(root: Path, lines: Any, overrides: list[str], semantic: list[Problem]) -> tuple[dict[str, Any], str]:
    spec, policy = lines.data, load_policy(root).data
    spec_file = lines.file
    from rlops.registry.versions import resolve_parent

    groups, values = _parse_overrides(overrides)
    parent_version, parent_model = resolve_parent(root, spec["policy"], spec["parent"], spec_file, lines.line(("parent",)))
    if parent_model is not None and "model" in groups:
        raise InvalidInput([Problem("command line", None, "model", f"model={groups['model']} conflicts with parent "
                                    f"{spec['policy']}@{parent_version}: the parent's checkpoint is the model")],
                           hint="drop the model= override, or set `parent: base` in the spec")
    steps = spec["train"].get("steps")
    choice = {"model": policy["base_model"], "method": steps[0]["method"] if steps else spec["train"]["method"], **groups}
    composed = _compose(root, choice)
    if parent_model is not None:
        composed["model"] = parent_model

    if steps:  # a recipe: each step is its method's conf with the step's overrides, in order
        train, problems = _recipe(root, steps, spec_file,
                                  lambda path: lines.line(tuple(int(k) if k.isdigit() else k for k in path)))
    else:
        train = composed["train"]
        problems = _apply_mapping(train, spec["train"].get("overrides", {}), spec_file, "train.overrides", lines.line)
    evaluate = composed["evaluate"]
    problems += _apply_mapping(evaluate, spec["evaluate"].get("overrides", {}), spec_file, "evaluate.overrides", lines.line)
    evaluate["suites"] = list(spec["evaluate"]["suites"])
    extract = composed["extract"]
    for key, value in spec.get("extract", {}).items():  # a mapping (judge, implicit_weights) merges with its default
        both = isinstance(value, dict) and isinstance(extract.get(key), dict)
        extract[key] = {**extract[key], **value} if both else value
    fb = spec["feedback"]
    params: dict[str, Any] = {
        "plan": {"spec": spec_file, "overrides": list(overrides)},
        "cycle": {
            "number": spec["cycle"],
            "policy": spec["policy"],
            "parent": spec["parent"],
            "parent_version": parent_version,
            "rationale": spec["rationale"],
            "promotion": {**composed["promotion"], **spec.get("promotion", {})},
        },
        "policy": {"name": policy["policy"], "system_prompt": policy["system_prompt"]},
        "data": {"interactions": fb["interactions"], "feedback": fb["feedback"], "window": fb.get("window")},
        "extract": extract,
        "model": composed["model"],
        "train": train,
        "runtime": composed["runtime"],
        "evaluate": evaluate,
        "gate": {"bootstrap": composed["gate"]["bootstrap"],
                 "rules": [{**g, **{k: v for k, v in _rule_defaults(composed, g["rule"]).items() if k not in g}}
                           for g in spec["gates"]]},
        "seed": composed["seed"],
    }
    problems += [p for p in (_set_override(params, o, "command line") for o in values) if p]
    problems += [Problem("command line", None, o.key_or_group, "derived from data.interactions and data.feedback; "
                         "override those") for o in values if o.key_or_group.lstrip("+~").startswith("data.sources")]
    params["data"]["sources"] = sources(params["data"])
    problems += [Problem("command line", None, o.key_or_group, "derived from the win_rate gates in gate.rules; change "
                         "those") for o in values if o.key_or_group.lstrip("+~").split(".")[0] == "judge"]
    from rlops.evaluate.judge import judge_section

    params["judge"] = judge_section(params["gate"]["rules"])
    if not problems:  # the checks read the params these settings give: only once all of them applied
        problems += checks.params_problems(params, root, _origin(root, lines, groups, values, choice, parent_model))
    seen = {(p.field, p.message) for p in semantic}  # a settings model's check between keys runs in both
    problems = semantic + [p for p in problems if (p.field, p.message) not in seen]
    if problems:
        raise InvalidInput(problems, hint="fix each place named above, then run `rlops plan` again")
    params = {k: params[k] for k in SECTIONS if k in params}
    command = " ".join(["rlops", "plan", shlex.quote(spec_file), *map(shlex.quote, overrides)])
    header = (f"# Generated by `{command}` from {spec_file} and {CONF_DIR}/.\n"
              "# Do not edit: change the spec (or the conf) and run `rlops plan` again; `rlops plan --check` tells when this is stale.\n")
    text = header + yaml.safe_dump(params, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return params, text


def _rule_defaults(composed: dict[str, Any], rule: str) -> dict[str, Any]:
    """A gate rule's defaults: pipelines/conf's `gate.rule_defaults`, else (a rule registered elsewhere) the rule's
    settings model. A test keeps the conf's equal to the built-in rules' models."""
    conf = composed["gate"]["rule_defaults"].get(rule)
    if conf is not None:
        return dict(conf)
    from rlops.gates import rule_defaults

    return rule_defaults(rule)


def write(root: Path, spec_path: Path, overrides: list[str]) -> Path:
    from rlops.io import atomic_write_text

    _, text = plan(root, spec_path, overrides)
    out = Path(root) / PARAMS
    atomic_write_text(out, text)
    return out


def differences(current: Any, planned: Any, path: str = "") -> list[str]:
    """The values that differ, one line each (`train.max_steps: 24 in params.yaml, 25 planned`); YAML formatting
    (quoting, `null` or empty, line wrapping, comments) is not a difference."""
    if isinstance(current, dict) and isinstance(planned, dict):
        out = []
        for key in [*current, *(k for k in planned if k not in current)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in planned:
                out.append(f"{where}: in params.yaml, not planned")
            elif key not in current:
                out.append(f"{where}: planned ({_show(planned[key])}), missing from params.yaml")
            else:
                out += differences(current[key], planned[key], where)
        return out
    if isinstance(current, list) and isinstance(planned, list) and len(current) == len(planned):
        return [d for i, (a, b) in enumerate(zip(current, planned)) for d in differences(a, b, f"{path}[{i}]")]
    if current == planned and type(current) is type(planned) or _same_number(current, planned):
        return []
    return [f"{path or '(the whole file)'}: {_show(current)} in params.yaml, {_show(planned)} planned"]


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return all(isinstance(x, numbers) and not isinstance(x, bool) for x in (a, b)) and a == b


def _show(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
    return text if len(text) <= 80 else text[:77] + "..."


def staleness(root: Path, spec_path: Path | None = None, overrides: list[str] | None = None) -> tuple[str, list[str]]:
    """(the plan command, how params.yaml differs from what it produces now: [] when current).

    Raises StaleParams when there is no params.yaml or it names no spec, InvalidInput when the spec no longer plans."""
    out = Path(root) / PARAMS
    if not out.is_file():
        raise StaleParams(f"{PARAMS} does not exist", hint="run `rlops plan SPEC`")
    try:
        current = yaml.safe_load(out.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise StaleParams(f"{PARAMS} is not valid YAML: {str(e).splitlines()[0]}", hint="run `rlops plan SPEC`") from None
    if spec_path is None:
        recorded = (current.get("plan") if isinstance(current, dict) else None) or {}
        if "spec" not in recorded:
            raise StaleParams(f"{PARAMS} has no `plan` section naming its spec", hint="run `rlops plan SPEC`")
        spec_path, overrides = Path(recorded["spec"]), list(recorded.get("overrides") or [])
    _, text = plan(root, spec_path, overrides or [])
    command = " ".join(["rlops plan", shlex.quote(str(spec_path)), *map(shlex.quote, overrides or [])])
    return command, differences(current, yaml.safe_load(text))


def check(root: Path, spec_path: Path | None, overrides: list[str] | None) -> None:
    """Raise StaleParams when params.yaml's values differ from what the spec and conf produce now."""
    command, diff = staleness(root, spec_path, overrides)
    if diff:
        raise StaleParams(f"{PARAMS} is stale: it differs from what `rlops plan` produces now:\n"
                          + "\n".join(f"  {d}" for d in diff),
                          hint=f"run `{command}` and commit params.yaml")
