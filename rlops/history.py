"""`rlops history`: every cycle of the repository, promoted or not, from git and the ledger.

A cycle shows up wherever it left a trace, and the furthest trace decides its status:

    planned    a spec in specs/cycles/ (committed at HEAD, or only in the working tree)
    evaluated  this working tree holds its gate verdict (`dvc repro` ran), and nothing was proposed
    proposed   a `cycle/<spec>` branch carries its proposal commit (registry entry, verdict), not merged here
    merged     HEAD's registry holds its version, but no promotion of it is recorded in the ledger
    promoted   audit/ledger.jsonl records it going to production, shadow or canary

Everything is read at HEAD through git (specs, registry entries, the ledger, the deployment manifests), from the
cycle branches' proposal commits, and from the working tree's verdict. Light: git, YAML and JSON only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import EXIT_INVALID, RlopsError
from rlops.gitio import BlobReader, git, parse_yaml_text, rev

STATUSES = ("planned", "evaluated", "proposed", "merged", "promoted")
SPECS = "specs/cycles"
VERDICT = layout.VERDICT
STARTED = {"promoted": "production", "shadow_started": "shadow", "canary_started": "canary"}


class BadRef(RlopsError):
    exit_code = EXIT_INVALID


@dataclass
class Cycle:
    spec: str  # specs/cycles/NNNN-slug.yaml: the cycle's identity (its branch is cycle/NNNN-slug)
    cycle: int | None = None
    policy: str | None = None
    parent: str | None = None  # the version it trained from (the spec's `parent` until a proposal resolves it)
    version: str | None = None  # the version its proposal registers
    status: str = "planned"
    verdict: str | None = None  # pass | fail, from the proposal's registry entry or this working tree's verdict
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # gate metric -> incumbent, candidate, diff
    branch: str | None = None
    promoted: list[dict[str, Any]] = field(default_factory=list)  # ledger: {stage, ts, merge} per promotion
    serving: list[str] = field(default_factory=list)  # the manifest's stages that name its version at HEAD


def _json(text: str | None) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _metrics(gates: Any) -> dict[str, dict[str, Any]]:
    """Key metrics of a verdict's gates or a registry entry's evaluation: metric -> incumbent, candidate, diff."""
    items = gates.items() if isinstance(gates, dict) else ((g.get("metric"), g) for g in gates or [])
    out: dict[str, dict[str, Any]] = {}
    for metric, g in items:
        if metric and isinstance(g, dict) and metric not in out:
            out[metric] = {k: g.get(k) for k in ("incumbent", "candidate", "diff", "passed")}
            if g.get("informative") is False:
                out[metric]["informative"] = False
    return out


def _from_entry(c: Cycle, entry: dict[str, Any]) -> None:
    c.cycle = entry.get("cycle", c.cycle)
    c.policy = entry.get("policy", c.policy)
    c.parent = entry.get("parent", c.parent)
    c.version = entry.get("version", c.version)
    c.verdict = entry.get("verdict", c.verdict)
    c.metrics = _metrics(entry.get("evaluation")) or c.metrics


def history(root: Path, ref: str = "HEAD") -> list[Cycle]:
    """Every cycle found at `ref`, on the cycle branches and in the working tree, ordered by cycle number."""
    head = rev(root, ref)
    if head is None and (ref != "HEAD" or git(root, "rev-list", "-n1", "--all", check=False).strip()):
        raise BadRef(f"'{ref}' names no commit in this repository",
                     hint="pass a branch, tag or commit (`git log --oneline`), or nothing for HEAD")
    cycles: dict[str, Cycle] = {}

    def cycle_of(spec: str) -> Cycle:
        return cycles.setdefault(spec, Cycle(spec))

    with BlobReader(root) as blobs:
        tree = git(root, "ls-tree", "-r", "--name-only", head, "--", SPECS, "registry").splitlines() if head else []
        specs = {p for p in tree if p.startswith(SPECS + "/") and p.endswith((".yaml", ".yml"))}
        specs |= {str(p.relative_to(root)) for p in (root / SPECS).glob("*.y*ml")} if (root / SPECS).is_dir() else set()
        for spec in sorted(specs):
            text = blobs.text(head, spec) if head and spec in tree else None
            if text is None and (root / spec).is_file():
                text = (root / spec).read_text(encoding="utf-8")
            try:
                data = parse_yaml_text(text) or {}
            except Exception:  # a broken spec is `rlops validate`'s to report; history still lists the file
                data = {}
            c = cycle_of(spec)
            if isinstance(data, dict):
                c.cycle = data.get("cycle") if isinstance(data.get("cycle"), int) else None
                c.policy, c.parent = data.get("policy"), data.get("parent")

        # proposals on the cycle branches (local ones, and remote-tracking ones not checked out here)
        refs = git(root, "for-each-ref", "--format=%(refname)", "refs/heads/cycle/", "refs/remotes/").split()
        for ref_name in refs:
            short = ref_name.split("/", 3)[-1] if ref_name.startswith("refs/remotes/") else ref_name[len("refs/heads/"):]
            if not short.startswith("cycle/"):
                continue
            proposal = git(root, "log", "-n1", "--format=%H", "--grep=^Rlops-Version:", ref_name, check=False).strip()
            if not proposal:
                continue
            trailers = dict(line.split(": ", 1) for line in blobs.message(proposal).splitlines() if ": " in line
                            and line.split(": ", 1)[0].startswith("Rlops-"))
            policy, version = trailers.get("Rlops-Policy"), trailers.get("Rlops-Version")
            entry = parse_yaml_text(blobs.text(proposal, f"registry/{policy}/{version}/version.yaml")) or {}
            spec = (entry.get("spec") or {}).get("path") or f"{SPECS}/{short[len('cycle/'):]}.yaml"
            c = cycle_of(spec)
            if c.branch and c.branch.startswith("cycle/") and ref_name.startswith("refs/remotes/"):
                continue  # the local branch wins over its remote-tracking copy
            c.branch = short if ref_name.startswith("refs/heads/") else ref_name[len("refs/remotes/"):]
            _from_entry(c, entry)
            c.status = "proposed"

        # registered versions at HEAD: merged proposals
        by_version: dict[tuple[str, str], Cycle] = {}
        for path in tree:
            parts = path.split("/")
            if len(parts) == 4 and parts[0] == "registry" and parts[3] == "version.yaml":
                entry = parse_yaml_text(blobs.text(head, path)) or {}
                spec = (entry.get("spec") or {}).get("path") or f"(cycle {entry.get('cycle')})"
                c = cycle_of(spec)
                _from_entry(c, entry)
                c.version, c.policy = parts[2], parts[1]
                c.status = "merged"
                by_version[(parts[1], parts[2])] = c

        # the ledger at HEAD: which of them were promoted, and where
        ledger_text = (blobs.text(head, "audit/ledger.jsonl") or "") if head else ""
        for line in ledger_text.splitlines():
            event = _json(line)
            stage = STARTED.get(event.get("event"))
            data = event.get("data") or {}
            c = by_version.get((event.get("policy"), data.get("version")))
            if stage and c is not None:
                c.status = "promoted"
                c.promoted.append({"stage": stage, "ts": event.get("ts"), "merge": data.get("merge"),
                                   "via": data.get("via")})

        # who serves what now, per the manifests at HEAD
        manifests = git(root, "ls-tree", "--name-only", head, "deployments/").splitlines() if head else []
        for path in manifests:
            m = parse_yaml_text(blobs.text(head, path)) or {}
            policy = Path(path).stem
            for stage in ("production", "shadow", "canary"):
                version = m.get(stage)
                c = by_version.get((policy, version)) if version else None
                if c is not None:
                    c.serving.append(stage)

    # this working tree's last run, when its cycle was not proposed
    params_file = root / "params.yaml"
    params = parse_yaml_text(params_file.read_text(encoding="utf-8")) if params_file.is_file() else None
    verdict = _json((root / VERDICT).read_text(encoding="utf-8")) if (root / VERDICT).is_file() else {}
    spec = ((params or {}).get("plan") or {}).get("spec")
    if verdict and spec:
        c = cycle_of(spec)
        if c.status == "planned" and verdict.get("cycle", c.cycle) == c.cycle:
            c.status, c.verdict = "evaluated", verdict.get("decision")
            c.metrics = _metrics(verdict.get("gates"))
            c.parent = ((params or {}).get("cycle") or {}).get("parent_version") or c.parent
    return sorted(cycles.values(), key=lambda c: (c.cycle is None, c.cycle or 0, c.spec))


def to_json(cycles: list[Cycle]) -> list[dict[str, Any]]:
    return [asdict(c) for c in cycles]


def _metric_cell(metrics: dict[str, dict[str, Any]]) -> str:
    cells = []
    for metric, m in metrics.items():
        inc, cand = m.get("incumbent"), m.get("candidate")
        value = f"{inc:.3f}->{cand:.3f}" if isinstance(inc, (int, float)) and isinstance(cand, (int, float)) else "–"
        cells.append(f"{metric} {value}" + (" (tie)" if m.get("informative") is False else ""))
    return ", ".join(cells) or "–"


def table(cycles: list[Cycle]) -> str:
    """A plain-text table, one row per cycle."""
    head = ("cycle", "spec", "parent", "version", "status", "verdict", "key metrics (incumbent->candidate)")
    rows = []
    for c in cycles:
        status = c.status
        if c.promoted:
            status += " (" + ", ".join(dict.fromkeys(p["stage"] for p in c.promoted)) + ")"
        if c.serving:
            status += "; serving " + ", ".join(c.serving)
        elif c.promoted:
            status += "; not serving now"
        rows.append((f"{c.cycle:04d}" if isinstance(c.cycle, int) else "?", Path(c.spec).name, c.parent or "–",
                     c.version or "–", status, (c.verdict or "–").upper() if c.verdict else "–", _metric_cell(c.metrics)))
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1] for r in [head, *rows]]
    return "\n".join(line.rstrip() for line in lines)
