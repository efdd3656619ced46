"""`rlops monitor`: post-market monitoring of every version that served, per stage and per day or week.

    rlops monitor [--interactions PATH ...] [--feedback PATH ...] [--bucket day|week] [--rollback]

Reads the production logs (by default the paths of the newest cycle spec; a Recorder's folder works too, e.g.
`--interactions logs/interactions --feedback logs/feedback`) and writes `artifacts/monitor/monitor.json`
(layout.MONITOR), a DVC metric (dvc.yaml's top-level `metrics:`) that `rlops audit report` renders once it is
committed. Per version and stage (`agent.version`, `agent.stage` of each interaction), in total and per bucket:

| figure              | how                                                                                      |
|---------------------|------------------------------------------------------------------------------------------|
| `interactions`, `users` | counted                                                                              |
| `feedback_rate`     | share of interactions with at least one feedback event                                   |
| `rating`            | mean rating scaled to [0, 1] over `rated` interactions                                   |
| `edit_rate`         | share of interactions a person edited                                                    |
| `refusal_rate`      | share whose answer the evaluation's `refusal` metric (components registry) marks refused |
| `over_refusal_rate` | share refused where feedback shows it should have helped: an edit that does not refuse, or a rating in the lower half of its scale |
| `tool_error_rate`   | share with a failed tool call (a step's `error`, or a tool message's JSON `error`)       |
| `latency_ms`        | p50, p95 and mean of `outcome.latency_ms`, over interactions that record it              |

Then each canary version against production over the canary's time span (rlops/monitor/compare.py says which test
and why). A canary significantly worse on any tested metric is flagged: exit 10 when it is the canary the
deployment manifest names (any flagged canary when there is no manifest), and `--rollback` opens the proposal that
takes it out of the manifest through `rlops rollback`'s code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import InvalidInput, Problem

FORMAT = "rlops-monitor/1"
STAGES = ("production", "canary", "shadow")


@dataclass(frozen=True)
class Options:
    interactions: list[str]
    feedback: list[str]
    bucket: str = "day"
    min_users: int = 20


class _Tally:
    """The running sums of one (version, stage[, bucket])."""

    def __init__(self) -> None:
        self.n = self.feedback = self.rated = self.edits = self.refusals = self.over = self.tool_errors = 0
        self.rating_sum = 0.0
        self.users: set[str] = set()
        self.latency: list[float] = []
        self.first = self.last = None

    def add(self, row, refused: bool, over: bool) -> None:
        self.n += 1
        self.users.add(row.user)
        self.feedback += row.feedback > 0
        if row.rating is not None:
            self.rated += 1
            self.rating_sum += row.rating
        self.edits += row.edited
        self.refusals += refused
        self.over += over
        self.tool_errors += row.tool_error
        if row.latency_ms is not None:
            self.latency.append(row.latency_ms)
        self.first = row.ts if self.first is None else self.first
        self.last = row.ts

    def figures(self) -> dict[str, Any]:
        def share(k: int) -> float:
            return round(k / self.n, 6) if self.n else 0.0

        lat = sorted(self.latency)
        return {"interactions": self.n, "users": len(self.users), "feedback_rate": share(self.feedback),
                "rated": self.rated, "rating": round(self.rating_sum / self.rated, 6) if self.rated else None,
                "edit_rate": share(self.edits), "refusal_rate": share(self.refusals),
                "over_refusal_rate": share(self.over), "tool_error_rate": share(self.tool_errors),
                "latency_ms": {"n": len(lat), "p50": _quantile(lat, 0.5), "p95": _quantile(lat, 0.95),
                               "mean": round(sum(lat) / len(lat), 3) if lat else None}}


def _quantile(xs: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted `xs`."""
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))], 3)


def _iso(epoch: float | None) -> str | None:
    import datetime as dt

    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def default_sources(root: Path) -> tuple[list[str], list[str]]:
    """The log paths of the newest cycle spec (what `rlops cycle new` continues)."""
    from rlops.cadence import _as_list, last_spec

    try:
        _, spec = last_spec(root)
    except InvalidInput:
        raise InvalidInput([Problem("command line", None, "--interactions", "not given, and there is no cycle spec "
                                    "whose feedback paths could stand in")],
                           hint="name the logs: rlops monitor --interactions PATH --feedback PATH") from None
    fb = spec.get("feedback") if isinstance(spec.get("feedback"), dict) else {}
    return _as_list(fb.get("interactions")), _as_list(fb.get("feedback"))


def bootstrap_settings(root: Path):
    """The gate's bootstrap settings (pipelines/conf/config.yaml's gate.bootstrap; the model's defaults without it)."""
    import yaml

    from rlops import settings
    from rlops.monitor.compare import Bootstrap

    path = root / "pipelines" / "conf" / "config.yaml"
    values: dict = {}
    if path.is_file():
        conf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        values = ((conf.get("gate") or {}).get("bootstrap")) or {}
    model, problems = settings.check(settings.BootstrapSettings, values, "pipelines/conf/config.yaml", "gate.bootstrap")
    if problems:
        raise InvalidInput(problems, hint="fix gate.bootstrap in pipelines/conf/config.yaml")
    return Bootstrap(int(model.samples), float(model.confidence), int(model.seed))


def collect(root: Path, options: Options) -> dict[str, Any]:
    """The monitoring document: per version and stage, per bucket, and every canary against production."""
    from rlops import components
    from rlops.monitor.compare import TESTED, compare
    from rlops.monitor.read import BUCKETS, Spans, scan

    root = Path(root)
    problems = [Problem("command line", None, f"--{what}", f"{p!r}: no such file or folder under {root}")
                for what, paths in (("interactions", options.interactions), ("feedback", options.feedback))
                for p in paths if not any(c in p for c in "*?[") and not (root / p).exists()]
    if not options.interactions:
        problems.append(Problem("command line", None, "--interactions", "no interaction logs given"))
    if options.bucket not in BUCKETS:
        problems.append(Problem("command line", None, "--bucket", f"{options.bucket!r}: use day or week"))
    if problems:
        raise InvalidInput(problems, hint="name the logs with --interactions/--feedback (a file or a folder)")
    refusal = components.get("metric", "refusal").function  # the evaluation's grader, whoever improves it
    boot = bootstrap_settings(root)
    totals: dict[tuple[str, str], _Tally] = {}
    buckets: dict[tuple[str, str, str], _Tally] = {}
    spans: dict[str, tuple[float, float]] = {}
    # canary version -> arm -> metric -> user -> [sum, count]: production counts only on the canary's own days
    arms: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    against: dict[str, set[str]] = {}
    skipped = 0
    for row in scan(root, options.interactions, options.feedback, options.bucket):
        if isinstance(row, Spans):
            spans = row.canary
            arms = {v: {"canary": {}, "production": {}} for v in spans}
            against = {v: set() for v in spans}
            continue
        if isinstance(row, int):
            skipped = row
            continue
        refused = bool(refusal({}, row.answer))
        over = refused and ((row.edited and row.edit_answer is not None and not refusal({}, row.edit_answer))
                            or (row.rating is not None and row.rating < 0.5))
        key = (row.version, row.stage)
        totals.setdefault(key, _Tally()).add(row, refused, over)
        buckets.setdefault((*key, row.bucket), _Tally()).add(row, refused, over)
        if row.stage == "canary":
            targets = [arms[row.version]["canary"]]
        elif row.stage == "production":
            targets = [arms[v]["production"] for v, (a, b) in spans.items() if a <= row.ts <= b]
            for v, (a, b) in spans.items():
                if a <= row.ts <= b:
                    against[v].add(row.version)
        else:
            continue
        if not targets:
            continue
        values = {"edit_rate": float(row.edited), "over_refusal_rate": float(over),
                  "tool_error_rate": float(row.tool_error), "rating": row.rating, "latency_ms": row.latency_ms}
        for arm in targets:
            for metric, value in values.items():
                if value is not None:
                    cell = arm.setdefault(metric, {}).setdefault(row.user, [0.0, 0])
                    cell[0] += value
                    cell[1] += 1
    versions = []
    for (version, stage), tally in sorted(totals.items(), key=lambda kv: (kv[1].first, kv[0])):
        versions.append({"version": version, "stage": stage, "from": _iso(tally.first), "to": _iso(tally.last),
                         **tally.figures(),
                         "buckets": [{"start": b, **t.figures()} for (v, s, b), t in sorted(buckets.items())
                                     if (v, s) == (version, stage)]})
    canaries = []
    for version, (start, end) in spans.items():
        results = compare(arms[version]["canary"], arms[version]["production"], boot, options.min_users)
        canaries.append({"version": version, "against": sorted(against[version]), "from": _iso(start),
                         "to": _iso(end), "interactions": {"canary": totals[(version, "canary")].n},
                         "worse": any(r["worse"] for r in results), "metrics": results})
    # the same totals as a nested mapping, version -> stage -> figure: what `dvc metrics show/diff` can display
    figures = {}
    for v in versions:
        flat = {k: x for k, x in v.items() if k not in ("version", "stage", "from", "to", "buckets", "latency_ms")}
        figures.setdefault(v["version"], {})[v["stage"]] = {**flat, "latency_p50_ms": v["latency_ms"]["p50"]}
    return {"format": FORMAT, "figures": figures, "bucket": options.bucket, "interactions": options.interactions,
            "feedback": options.feedback, "skipped_records": skipped,
            "bootstrap": {"samples": boot.samples, "confidence": boot.confidence, "seed": boot.seed},
            "min_users": options.min_users, "tested_metrics": list(TESTED), "versions": versions,
            "canaries": canaries, "flagged": sorted(c["version"] for c in canaries if c["worse"])}


def write(root: Path, doc: dict[str, Any], out: str = layout.MONITOR) -> Path:
    from rlops.io import atomic_write_json

    return atomic_write_json(Path(root) / out, doc)


def current_canary(root: Path) -> str | None:
    """The canary the deployment manifest names now, or None (no manifest, or no canary)."""
    import yaml

    from rlops.registry import manifest

    policy_file = Path(root) / "specs" / "policy.yaml"
    if not policy_file.is_file():
        return None
    policy = (yaml.safe_load(policy_file.read_text(encoding="utf-8")) or {}).get("policy")
    if not isinstance(policy, str) or not (Path(root) / manifest.manifest_path(policy)).is_file():
        return None
    return manifest.load(Path(root), policy).canary


def alarm(root: Path, doc: dict[str, Any]) -> list[str]:
    """The flagged canaries that count for the exit code: the manifest's canary, or every flagged one without it."""
    flagged = doc["flagged"]
    try:
        named = current_canary(root)
    except InvalidInput:
        named = None
    if named is None and _has_manifest(root):
        return []  # the manifest names no canary any more: a flagged one is history (see the report)
    return [v for v in flagged if named is None or v == named]


def _has_manifest(root: Path) -> bool:
    return any((Path(root) / "deployments").glob("*.yaml"))
