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
from rlops.spec.validate import load_policy, load_spec

CONF_DIR = Path("pipelines") / "conf"
PARAMS = "params.yaml"
GROUPS = {"model", "method", "runtime", "evaluate"}  # config groups a `group=option` override selects
SECTIONS = ("plan", "cycle", "policy", "data", "extract", "model", "train", "runtime", "evaluate", "gate", "seed")


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


def _set_override(params: dict[str, Any], o, file: str) -> None:
    """Apply one `a.b.c=value` override; refuse keys that do not exist (typos) unless `+`-prefixed."""
    *parents, leaf = o.key_or_group.split(".")
    if (parents[0] if parents else leaf) not in SECTIONS:
        raise InvalidInput([Problem(file, None, o.key_or_group, "no such section")],
                           hint=f"params.yaml has: {', '.join(SECTIONS)}")
    node = params
    for k in parents:
        if not isinstance(node.get(k), dict):
            if o.type.name != "ADD":
                raise InvalidInput([Problem(file, None, o.key_or_group, f"no such setting ('{k}' is not a section)")])
            node[k] = {}
        node = node[k]
    if o.type.name == "DEL":
        node.pop(leaf, None)
        return
    if leaf not in node and o.type.name != "ADD":
        known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
        raise InvalidInput([Problem(file, None, o.key_or_group, "no such setting")],
                           hint=f"known here: {known}; prefix with + to add a new key")
    node[leaf] = o.value()


def _apply_mapping(section: dict[str, Any], overrides: dict[str, Any], spec_file: str, field: str, line) -> None:
    problems = []
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = section
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node or isinstance(node[leaf], dict):
            known = ", ".join(sorted(k for k, v in section.items() if not isinstance(v, dict)))
            problems.append(Problem(spec_file, line((*field.split("."), key)), f"{field}.{key}",
                                    f"not a setting here; known: {known}"))
            continue
        node[leaf] = value
    if problems:
        raise InvalidInput(problems)


def plan(root: Path, spec_path: Path, overrides: list[str]) -> tuple[dict[str, Any], str]:
    """Return the resolved params and the exact text of params.yaml for this spec and overrides."""
    root = Path(root)
    spec_path = Path(spec_path)
    lines = load_spec(spec_path if spec_path.is_absolute() else root / spec_path, root)
    spec, policy = lines.data, load_policy(root).data
    spec_file = lines.file
    from rlops.registry.versions import resolve_parent

    groups, values = _parse_overrides(overrides)
    parent_version, parent_model = resolve_parent(root, spec["policy"], spec["parent"], spec_file, lines.line(("parent",)))
    if parent_model is not None and "model" in groups:
        raise InvalidInput([Problem("command line", None, "model", f"model={groups['model']} conflicts with parent "
                                    f"{spec['policy']}@{parent_version}: the parent's checkpoint is the model")],
                           hint="drop the model= override, or set `parent: base` in the spec")
    choice = {"model": policy["base_model"], "method": spec["train"]["method"], **groups}
    composed = _compose(root, choice)
    if parent_model is not None:
        composed["model"] = parent_model

    train = composed["train"]
    _apply_mapping(train, spec["train"].get("overrides", {}), spec_file, "train.overrides", lines.line)
    evaluate = composed["evaluate"]
    _apply_mapping(evaluate, spec["evaluate"].get("overrides", {}), spec_file, "evaluate.overrides", lines.line)
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
    for o in values:
        _set_override(params, o, "command line")
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


def check(root: Path, spec_path: Path | None, overrides: list[str] | None) -> None:
    """Raise StaleParams when params.yaml differs from what the spec and conf produce now."""
    out = Path(root) / PARAMS
    if not out.is_file():
        raise StaleParams(f"{PARAMS} does not exist", hint="run `rlops plan SPEC`")
    current = out.read_text(encoding="utf-8")
    if spec_path is None:
        recorded = (yaml.safe_load(current) or {}).get("plan") or {}
        if "spec" not in recorded:
            raise StaleParams(f"{PARAMS} has no `plan` section naming its spec", hint="run `rlops plan SPEC`")
        spec_path, overrides = Path(recorded["spec"]), list(recorded.get("overrides", []))
    _, text = plan(root, spec_path, overrides or [])
    if text != current:
        import difflib

        diff = "".join(difflib.unified_diff(current.splitlines(True), text.splitlines(True), PARAMS, "planned", n=0))
        raise StaleParams(f"{PARAMS} is stale: it differs from what `rlops plan` produces now:\n{diff.rstrip()}",
                          hint=f"run `rlops plan {spec_path} {' '.join(overrides or [])}`".rstrip() + " and commit params.yaml")
