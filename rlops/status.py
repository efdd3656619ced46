"""`rlops status` and the staleness line of `rlops verdict`: is what is on disk what the spec says now?

Three questions, each answered from what is on disk: is params.yaml what `rlops plan` would write now (values,
not formatting)? Which stages would `dvc repro` re-run? Is the verdict the verdict of this plan and these outputs?
DVC is asked in a subprocess, so this module imports nothing heavy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import RlopsError

PARAMS = "params.yaml"
VERDICT = Path(layout.VERDICT)

# One subprocess: DVC's status, and every stage downstream of a changed one (status names only the first).
_DVC_PROBE = """
import json, networkx as nx
from dvc.repo import Repo
with Repo(".") as repo:
    changed = repo.status()
    graph = repo.index.graph
    by_name = {stage.addressing: stage for stage in graph}
    rerun = set(changed)
    for name in changed:
        if name in by_name:
            rerun |= {stage.addressing for stage in nx.ancestors(graph, by_name[name])}
    order = [stage.addressing for stage in reversed(list(nx.topological_sort(graph)))]
    print(json.dumps({"changed": changed, "rerun": [n for n in order if n in rerun]}))
"""


@dataclass
class PlanState:
    spec: str | None = None
    overrides: list[str] = field(default_factory=list)
    cycle: Any = None
    command: str | None = None
    differences: list[str] = field(default_factory=list)  # params.yaml vs what `rlops plan` gives now
    problem: str | None = None  # no params.yaml, or the spec no longer plans

    @property
    def stale(self) -> bool:
        return bool(self.differences or self.problem)


@dataclass
class DvcState:
    rerun: list[str] = field(default_factory=list)  # in pipeline order
    changed: dict[str, Any] = field(default_factory=dict)  # `dvc status`: the stages whose own inputs changed
    problem: str | None = None  # DVC could not be asked


@dataclass
class VerdictState:
    decision: str | None = None  # pass | fail | None (no verdict yet)
    stale: list[str] = field(default_factory=list)  # why it is not the verdict of this plan and these outputs


def plan_state(root: Path) -> PlanState:
    """Whether params.yaml's values are what its recorded spec, overrides and the conf give now."""
    import yaml

    from rlops.spec import compose

    state = PlanState()
    path = Path(root) / PARAMS
    try:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except yaml.YAMLError:
        recorded = None
    if isinstance(recorded, dict):
        plan = recorded.get("plan") if isinstance(recorded.get("plan"), dict) else {}
        state.spec, state.overrides = plan.get("spec"), list(plan.get("overrides") or [])
        state.cycle = (recorded.get("cycle") or {}).get("number") if isinstance(recorded.get("cycle"), dict) else None
    try:
        state.command, state.differences = compose.staleness(Path(root))
    except RlopsError as e:
        state.problem = e.message.splitlines()[0] + (f" ({e.hint})" if e.hint else "")
    return state


def dvc_state(root: Path, timeout: float = 300) -> DvcState:
    """The stages `dvc repro` would re-run, asked of DVC in a subprocess (this process stays light)."""
    if not (Path(root) / ".dvc").is_dir():
        return DvcState(problem="not a DVC repository (no .dvc/): run `dvc init`")
    try:
        p = subprocess.run([sys.executable, "-c", _DVC_PROBE], cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return DvcState(problem=f"`dvc status` took over {timeout:.0f} s")
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["no output"])[-1]
        return DvcState(problem=f"could not ask DVC: {last}")
    found = json.loads(p.stdout.strip().splitlines()[-1])
    return DvcState(rerun=found["rerun"], changed=found["changed"])


def verdict_state(root: Path, plan: PlanState, dvc: DvcState) -> VerdictState:
    """The verdict on disk, and every reason it does not describe the current plan and outputs."""
    path = Path(root) / VERDICT
    if not path.is_file():
        return VerdictState()
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return VerdictState(stale=[f"{VERDICT.as_posix()} is not readable JSON"])
    state = VerdictState(decision=str(verdict.get("decision", "unknown")))
    if plan.differences:
        state.stale.append(f"params.yaml differs from its spec and the conf ({len(plan.differences)} value(s): "
                           f"{plan.differences[0]}{', ...' if len(plan.differences) > 1 else ''}); "
                           f"run `{plan.command}`, then `dvc repro`")
    elif plan.problem:
        state.stale.append(f"the plan cannot be checked: {plan.problem}")
    if dvc.rerun:
        state.stale.append(f"DVC outputs are stale: `dvc repro` would re-run {', '.join(dvc.rerun)}")
    elif dvc.problem:
        state.stale.append(f"whether DVC's outputs are current is unknown: {dvc.problem}")
    if plan.cycle is not None and verdict.get("cycle") not in (None, plan.cycle):
        state.stale.append(f"it is the verdict of cycle {verdict.get('cycle')}, but params.yaml plans cycle {plan.cycle}")
    return state


def describe(root: Path) -> list[str]:
    """The lines `rlops status` prints."""
    plan = plan_state(root)
    dvc = dvc_state(root)
    verdict = verdict_state(root, plan, dvc)
    lines = []
    if plan.spec:
        extra = f" with {' '.join(plan.overrides)}" if plan.overrides else ""
        lines.append(f"cycle:    {plan.cycle} (planned from {plan.spec}{extra})")
    else:
        lines.append("cycle:    none planned (params.yaml names no spec): run `rlops plan SPEC`")
    if plan.problem:
        lines.append(f"plan:     cannot check: {plan.problem}")
    elif plan.differences:
        lines.append(f"plan:     STALE: params.yaml differs from what `{plan.command}` writes now:")
        lines += [f"            {d}" for d in plan.differences]
        lines.append(f"          run `{plan.command}` to update it")
    else:
        lines.append("plan:     current (params.yaml is what its spec and pipelines/conf give now)")
    if dvc.problem:
        lines.append(f"stages:   unknown: {dvc.problem}")
    elif dvc.rerun:
        lines.append(f"stages:   `dvc repro` would re-run {len(dvc.rerun)}: {', '.join(dvc.rerun)}")
    else:
        lines.append("stages:   up to date (`dvc repro` would run nothing)")
    if verdict.decision is None:
        lines.append(f"verdict:  none yet ({VERDICT.as_posix()} does not exist): run `dvc repro`")
    elif verdict.stale:
        lines.append(f"verdict:  {verdict.decision.upper()}, STALE:")
        lines += [f"            {why}" for why in verdict.stale]
    else:
        lines.append(f"verdict:  {verdict.decision.upper()}, current")
    return lines


def annotate_gate(root: Path) -> list[str]:
    """After the gate stage: when params.yaml is not what its spec and the conf give (a hand edit, an unplanned
    spec edit), say so in verdict.json (`plan_stale`) and at the top of the report, the pull request's body."""
    from rlops.io import atomic_write_json, atomic_write_text

    plan = plan_state(root)
    why = plan.differences or ([plan.problem] if plan.problem else [])
    verdict_path, report_path = Path(root) / VERDICT, Path(root) / layout.REPORT
    if not why or not verdict_path.is_file() or not report_path.is_file():
        return []
    verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    verdict["plan_stale"] = why
    title, _, rest = report_path.read_text(encoding="utf-8").partition("\n")
    fix = f"`{plan.command}`" if plan.command else "`rlops plan SPEC`"
    note = (f"\n> **Stale plan:** this run's `params.yaml` is not what {fix} writes now, so it is not the cycle its "
            "spec describes:\n" + "".join(f"> - `{d}`\n" for d in why) + ">\n> Re-plan, then `dvc repro`.\n")
    atomic_write_text(report_path, title + "\n" + note + rest)
    atomic_write_json(verdict_path, verdict)
    print(f"gate: params.yaml is stale against its spec ({len(why)} difference(s)): noted in the verdict and report",
          flush=True)
    return why
