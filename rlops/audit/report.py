"""`rlops audit report`: the history of a policy, rendered for an auditor as Markdown, JSON and HTML.

One section per registered version: the cycle's rationale, the dataset (size, digest, signals used), the training
method and hyper-parameters, before/after metrics with confidence intervals, red-team results, the gate verdict,
approvers, signer and dates; the rollbacks; and a summary naming the production version, whether the deployed
digest matches it (drift) and what `rlops audit verify` found; how each version behaved in production after it was
assessed (the committed `rlops monitor` figures, layout.MONITOR); and a table that says where the records the EU AI
Act asks of high-risk systems are found here, and what this repository does not hold. Everything is read from git at
`ref` (the ledger, the registry entries, the evidence files of each merge and the monitoring figures), so the same
history gives the same report, byte for byte.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from rlops import layout
from rlops.audit.verify import verify
from rlops.errors import InvalidInput, Problem
from rlops.gitio import BlobReader, rev
from rlops.io import atomic_write_json, atomic_write_text
from rlops.registry import versions

FORMATS = ("md", "json", "html")
SIGNALS = layout.SIGNALS_DETAIL
SIGNALS_BEFORE = layout.SIGNALS  # the whole report, in histories made before signals_detail.json
TRAIN_METRICS = layout.TRAIN_METRICS
VERDICT = layout.VERDICT
MD5 = re.compile(r"^(md5:)?([0-9a-f]{32})(\.dir)?$", re.I)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~7x faster, one version per file


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_LOADER)


def _load(blobs: BlobReader, commit: str | None, path: str, parse=json.loads) -> dict[str, Any] | None:
    """A mapping file of `commit` parsed (JSON by default), or None when it is missing, unreadable or not a mapping."""
    text = blobs.text(commit, path) if commit else None
    try:
        data = parse(text) if text is not None else None
    except (ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def commit_info(blobs: BlobReader, commit: str | None) -> tuple[str | None, list[str]]:
    """The committer date of `commit` (UTC, written as the ledger writes its timestamps) and its parents."""
    raw = blobs.text(commit) if commit else None
    header = (raw or "").partition("\n\n")[0]
    parents = re.findall(r"^parent ([0-9a-f]+)$", header, re.M)
    m = re.search(r"^committer .* (\d+) [+-]\d{4}$", header, re.M)
    return (datetime.fromtimestamp(int(m[1]), timezone.utc).isoformat().replace("+00:00", "Z") if m else None), parents


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[prefix + k] = v
    return out


def _span(lines: Any, last: int) -> tuple[int, int]:
    """An `approved` event's proposal_lines, clamped to the ledger (a damaged event must not stall the report)."""
    ok = isinstance(lines, list) and len(lines) == 2 and all(isinstance(n, int) for n in lines)
    return (max(1, lines[0]), min(last, lines[1])) if ok else (1, 0)


def _digest(value: str | None) -> str | None:
    m = MD5.match(value.strip()) if value else None
    return m[2].lower() if m else None


def _version_section(blobs: BlobReader, policy: str, version: str, at: str) -> dict[str, Any]:
    """What the registry entry and the evidence files of commit `at` say about `version`."""
    entry = _load(blobs, at, versions.version_file(policy, version), _yaml) or {}
    signals = _load(blobs, at, SIGNALS) or _load(blobs, at, SIGNALS_BEFORE) or {}
    params = _load(blobs, at, "params.yaml", _yaml) or {}
    metrics = _load(blobs, at, TRAIN_METRICS) or {}
    verdict = _load(blobs, at, VERDICT) or {}
    reasons = {g.get("metric"): g for g in verdict.get("gates", [])}
    evaluation = [{"metric": m, **g, "reason": reasons.get(m, {}).get("reason"),
                   "regressions": reasons.get(m, {}).get("regressions", [])}
                  for m, g in (entry.get("evaluation") or {}).items()]
    train = params.get("train") or {}
    model, data = entry.get("model") or {}, entry.get("data") or {}
    return {
        "version": version, "cycle": entry.get("cycle"), "parent": entry.get("parent"),
        "rationale": entry.get("rationale"), "proposed_by": entry.get("proposed_by"),
        "spec": entry.get("spec"), "promotion": entry.get("promotion"),
        "data": {"pairs": (signals.get("pairs") or {}).get("total"), "pairs_md5": data.get("pairs"),
                 "interactions_md5": data.get("interactions"), "feedback_md5": data.get("feedback"),
                 "records_read": signals.get("records_read"), "quarantined": signals.get("quarantined"),
                 "signals_declared": (params.get("extract") or {}).get("signals"),
                 "signals_used": {k: n for k, n in (signals.get("used") or {}).items() if n},
                 "dropped": {k: n for k, n in (signals.get("dropped") or {}).items() if n}},
        "training": {"method": (entry.get("training") or {}).get("method") or train.get("method"),
                     "base": model.get("base"), "hyperparameters": _flat({**(entry.get("training") or {}), **train}),
                     "result": metrics},
        "model": {"md5": model.get("md5"), "size": model.get("size"), "nfiles": model.get("nfiles")},
        "evaluation": evaluation,
        "redteam": [g for g in evaluation if str(g["metric"]).startswith("redteam.")],
        "verdict": entry.get("verdict") or verdict.get("decision"),
    }


def collect(root: Path, ref: str = "HEAD", deployed: str | None = None) -> dict[str, Any]:
    """The report as one JSON-able document."""
    head = rev(root, ref)
    if head is None:
        raise InvalidInput(f"{ref} is not a commit of {root}",
                         hint="name a branch, tag or commit; --root names the repository")
    expected = _digest(deployed)
    if deployed is not None and expected is None:
        raise InvalidInput([Problem("command line", None, "--deployed", f"{deployed!r} is not an md5 digest")],
                           hint="give the md5 of the served model, as in registry/<policy>/<version>/model.dvc")
    result = verify(root, head)
    policy, events = result.policy, result.events
    breaks = [{"commit": b.commit, "where": b.where, "message": b.message, "text": str(b)} for b in result.breaks]
    by_seq = {e.get("seq"): e for e in events}
    broken: dict[str, list[str]] = {}
    for b in breaks:
        broken.setdefault(b["commit"], []).append(b["text"])
    sections: dict[str, dict[str, Any]] = {}
    proposed_at: dict[int, str] = {}  # ledger line of a `proposed` event -> its version
    rollbacks: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    with BlobReader(root) as blobs:
        for ev in events:
            kind, data = ev.get("event"), ev.get("data") or {}
            if kind == "proposed":
                version = next((s["name"].split("@", 1)[1] for s in ev.get("subjects", [])
                                if s.get("name", "").startswith(f"{policy}@") and s.get("digest") != "parent"), None)
                if version:
                    proposed_at[ev.get("seq")] = version
                    sections[version] = {"version": version, "status": "merged, not promoted", "merge": None,
                                         "dates": {"proposed": ev.get("ts"), "merged": None, "promoted": None},
                                         "ledger_lines": [ev.get("seq")], "approval": None, "rollbacks": []}
            elif kind == "approved":
                merge, (lo, hi) = data.get("merge"), _span(data.get("proposal_lines"), len(events))
                batch = [by_seq[n] for n in range(lo, hi + 1) if n in by_seq]
                merged, parents = commit_info(blobs, merge)
                proposal = parents[1] if len(parents) > 1 else None
                approval = {"merge": merge, "proposal_commit": proposal, "approvers": data.get("approvers", []),
                            "required": data.get("required"), "signer": data.get("signer"),
                            "fingerprint": data.get("fingerprint"), "merged": merged, "approved": ev.get("ts"),
                            "checks": broken.get(merge, []) + broken.get(proposal or "", [])}
                back = next((b for b in batch if b.get("event") == "rolled_back"), None)
                if back:
                    d = back.get("data") or {}
                    rollbacks.append({"from": d.get("from"), "to": d.get("to"), "reason": d.get("reason"),
                                      "proposed": back.get("ts"), "by": back.get("actor"), **approval,
                                      "ledger_lines": [lo, ev.get("seq")]})
                    continue
                version = next((proposed_at[n] for n in range(lo, hi + 1) if n in proposed_at), None)
                if version:
                    s = sections[version]
                    s.update(merge=merge, approval=approval, status="merged, not promoted")
                    s["dates"]["merged"] = approval["merged"]
                    s["ledger_lines"] = [lo, ev.get("seq")]
            elif kind in ("promoted", "shadow_started", "canary_started"):
                version, stage = data.get("version"), data.get("stage")
                step = {"ts": ev.get("ts"), "event": kind, "stage": stage, "version": version, "from": data.get("from"),
                        "via": data.get("via"), "merge": data.get("merge"), "seq": ev.get("seq")}
                timeline.append(step)
                if version in sections and data.get("via") == "promotion":
                    sections[version]["dates"]["promoted"] = ev.get("ts")
                    sections[version]["status"] = f"promoted to {stage}"
                    sections[version]["stage"] = stage
        for back in rollbacks:
            for v in (back["from"], back["to"]):
                if v in sections:
                    sections[v]["rollbacks"].append({k: back[k] for k in ("from", "to", "reason", "merged", "merge")})
        for version, s in sections.items():
            found = _version_section(blobs, policy, version, s["merge"] or head)
            s.update({k: v for k, v in found.items() if k not in s})
            if version == result.production:
                s["status"] = "in production"
            elif s.get("stage") == "production" and any(b["from"] == version for b in rollbacks):
                s["status"] = "rolled back"
            elif s.get("stage") == "production":
                s["status"] = "superseded"
        production = result.production
        # drift is judged against the digest the promotion recorded, never the registry file at HEAD (write-once,
        # but a rewrite there must not make a swapped model look right)
        prod_md5 = recorded_digest(events, policy, production)
        description = (_load(blobs, head, "specs/policy.yaml", _yaml) or {}).get("description")
        monitoring = monitoring_section(_load(blobs, head, layout.MONITOR))
    last = next((t for t in reversed(timeline) if t["stage"] == "production"), None)
    if expected is None or prod_md5 is None:
        drift, why = "unknown", ("no deployed digest was given (--deployed)" if expected is None else
                                 f"{production} has no registered model digest (the base model)")
    elif _digest(prod_md5) == expected:
        drift, why = "no", f"the deployed model is {policy}@{production} (md5 {prod_md5})"
    else:
        drift, why = "yes", f"the deployed model (md5 {expected}) is not {policy}@{production} (md5 {prod_md5})"
    return {
        "format": "rlops-audit-report/1", "policy": policy, "description": description, "ref": ref, "head": head,
        "summary": {"production": production, "production_md5": prod_md5, "last_change": last,
                    "deployed": deployed, "drift": drift, "drift_reason": why, "versions": len(sections),
                    "promotions": result.promotions, "rollbacks": len(rollbacks), "ledger_events": len(events)},
        "verify": {"ok": not breaks, "promotions_verified": result.promotions, "breaks": breaks},
        "versions": sorted(sections.values(), key=lambda s: versions.number(s["version"])),
        "rollbacks": rollbacks, "timeline": timeline, "monitoring": monitoring,
    }


# layout: one list of blocks, rendered twice (Markdown, HTML), so the two formats cannot say different things

# ("h", level, text) | ("p", text, tone) | ("quote", text) | ("list", [text]) | ("table", [head], [[cell]])
Block = tuple


def _v(x: Any) -> str:
    if x is None:
        return "not recorded"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, dict):
        return ", ".join(f"{k} {_v(n)}" for k, n in x.items()) or "none"
    if isinstance(x, list):
        return ", ".join(map(_v, x)) or "none"
    return " ".join(str(x).split())  # one line: a value never opens a heading or a table row of its own


def _approval_lines(a: dict[str, Any] | None) -> list[str]:
    if not a:
        return ["No promotion of this merge is recorded in the ledger (run `rlops promote` on it)."]
    checks = "ok" if not a["checks"] else "BROKEN: " + "; ".join(a["checks"])
    return [f"Approvers: {_v(a['approvers'])} ({len(a['approvers'])} of {_v(a['required'])} required)",
            f"Signer: {_v(a['signer'])} (key {_v(a['fingerprint'])})",
            f"Merge commit: {_v(a['merge'])}; signature, evidence, parent and approvals re-checked by "
            f"`rlops audit verify`: {checks}"]


def blocks(doc: dict[str, Any]) -> list[Block]:
    s, policy = doc["summary"], doc["policy"]
    last = s["last_change"]
    out: list[Block] = [
        ("h", 1, f"Audit report: {policy}"),
        ("p", f"{_v(doc['description'])} History up to {doc['ref']} ({doc['head']}), read from the ledger "
              f"(audit/ledger.jsonl), the registry entries and the evidence files of each merge.", None),
        ("h", 2, "Summary"),
        ("table", ["", "value"], [
            ["Production", f"{policy}@{s['production']}"
                           + (f" (model md5 {s['production_md5']})" if s["production_md5"] else "")],
            ["Last production change", "none" if not last else f"{last['ts']}: {last['version']} replaced "
                                       f"{last['from']} by {last['via']} (merge {last['merge']})"],
            ["Deployed digest", _v(s["deployed"]) if s["deployed"] else "not given (--deployed MD5)"],
            ["Drift", f"{s['drift']}: {s['drift_reason']}"],
            ["Versions registered", str(s["versions"])],
            ["Rollbacks", str(s["rollbacks"])],
            ["Ledger events", str(s["ledger_events"])],
            ["rlops audit verify", f"ok: {doc['verify']['promotions_verified']} promotion(s) verified"
                                   if doc["verify"]["ok"] else f"{len(doc['verify']['breaks'])} break(s), listed below"],
        ]),
    ]
    if s["drift"] == "yes":
        out.append(("p", f"DRIFT: {s['drift_reason']}.", "bad"))
    if not doc["verify"]["ok"]:
        out += [("h", 2, "Verification breaks"), ("p", "The history does not verify; each break names its commit and "
                                                       "the file and line where it shows:", "bad"),
                ("list", [b["text"] for b in doc["verify"]["breaks"]])]
    out += [("h", 2, "Production and stage changes"),
            ("table", ["date", "event", "stage", "version", "from", "via", "merge", "ledger line"],
             [[_v(t["ts"]), t["event"], _v(t["stage"]), _v(t["version"]), _v(t["from"]), _v(t["via"]),
               _v(t["merge"]), _v(t["seq"])] for t in doc["timeline"]])
            if doc["timeline"] else ("p", "No promotion is recorded: the base model serves production.", None)]
    for v in doc["versions"]:
        d, tr = v["data"], v["training"]
        out += [("h", 2, f"{policy}@{v['version']}"),
                ("p", f"Status: {v['status']}. Cycle {_v(v['cycle'])}, trained from {_v(v['parent'])}; spec "
                      f"{_v((v['spec'] or {}).get('path'))} (git blob {_v((v['spec'] or {}).get('blob'))}); proposed by "
                      f"{_v(v['proposed_by'])}; ledger lines {'-'.join(map(_v, v['ledger_lines']))}.", None),
                ("quote", f"Rationale: {_v(v['rationale'])}"),
                ("table", ["proposed", "merged", "promoted"],
                 [[_v(v["dates"][k]) for k in ("proposed", "merged", "promoted")]]),
                ("h", 3, "Data"),
                ("list", [f"Dataset: {_v(d['pairs'])} preference pairs, md5 {_v(d['pairs_md5'])}",
                          f"Inputs: interactions md5 {_v(d['interactions_md5'])}, feedback md5 {_v(d['feedback_md5'])}; "
                          f"records read: {_v(d['records_read'])}; quarantined: {_v(d['quarantined'])}",
                          f"Signals declared: {_v(d['signals_declared'])}; events used per signal: {_v(d['signals_used'])}",
                          f"Events dropped: {_v(d['dropped'])}"]),
                ("h", 3, "Training"),
                ("list", [f"Method: {_v(tr['method'])}, from {_v(tr['base'])}",
                          f"Result: {_v(tr['result'])}" if tr["result"] else "Result: not recorded",
                          f"Model: md5 {_v(v['model']['md5'])}, {_v(v['model']['size'])} bytes in "
                          f"{_v(v['model']['nfiles'])} files"]),
                ("table", ["hyper-parameter", "value"], [[k, _v(x)] for k, x in tr["hyperparameters"].items()]),
                ("h", 3, "Evaluation: before (incumbent) and after (candidate)"),
                ("table", ["metric", "rule", "before", "after", "difference", "confidence interval", "items", "passed"],
                 [[g["metric"], _v(g.get("rule")), _v(g.get("incumbent")), _v(g.get("candidate")), _v(g.get("diff")),
                   f"[{_v(g.get('ci_low'))}, {_v(g.get('ci_high'))}]", _v(g.get("n")), _v(g.get("passed"))]
                  for g in v["evaluation"]]),
                ("h", 3, "Red team"),
                ("table", ["metric", "before", "after", "items regressed", "passed", "gate"],
                 [[g["metric"], _v(g.get("incumbent")), _v(g.get("candidate")), _v(g.get("regressions")),
                   _v(g.get("passed")), _v(g.get("reason"))] for g in v["redteam"]])
                if v["redteam"] else ("p", "No red-team gate was declared for this cycle.", "bad"),
                ("h", 3, f"Gate verdict: {_v(v['verdict']).upper()}"),
                ("list", [f"{g['metric']} ({_v(g.get('rule'))}): {'pass' if g.get('passed') else 'FAIL'}: {_v(g.get('reason'))}"
                          for g in v["evaluation"]]),
                ("h", 3, "Approval and signature"),
                ("list", _approval_lines(v["approval"]))]
        if v["rollbacks"]:
            out += [("h", 3, "Rollbacks"), ("list", [f"{_v(b['merged'])}: production {b['from']} -> {b['to']}: "
                                                     f"{_v(b['reason'])} (merge {_v(b['merge'])})" for b in v["rollbacks"]])]
    out += [("h", 2, "Rollbacks")]
    out.append(("table", ["proposed", "merged", "from", "to", "reason", "proposed by", "approvers", "signer", "merge",
                          "verified"],
                [[_v(b["proposed"]), _v(b["merged"]), _v(b["from"]), _v(b["to"]), _v(b["reason"]), _v(b["by"]),
                  _v(b["approvers"]), _v(b["signer"]), _v(b["merge"]), "ok" if not b["checks"] else "; ".join(b["checks"])]
                 for b in doc["rollbacks"]]) if doc["rollbacks"] else ("p", "No rollback is recorded.", None))
    return out + monitoring_blocks(doc) + eu_ai_act_blocks(doc)


def markdown(doc: dict[str, Any]) -> str:
    def esc(text: str) -> str:  # no raw HTML, no stray table cells
        return text.replace("\\", "\\\\").replace("<", "\\<").replace("|", "\\|")

    lines: list[str] = []
    for b in blocks(doc):
        if b[0] == "h":
            lines += [f"{'#' * b[1]} {esc(b[2])}", ""]
        elif b[0] == "p":
            lines += [("**" + esc(b[1]) + "**") if b[2] == "bad" else esc(b[1]), ""]
        elif b[0] == "quote":
            lines += ["> " + esc(b[1]), ""]
        elif b[0] == "list":
            lines += [f"- {esc(x)}" for x in b[1]] + [""]
        else:
            lines += ["| " + " | ".join(map(esc, b[1])) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(map(esc, row)) + " |" for row in b[2]] + [""]
    return "\n".join(lines)


STYLE = ("body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}"
         "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
         "text-align:left;vertical-align:top}th{background:#f3f3f3}blockquote{margin:.5rem 0;padding-left:1rem;"
         "border-left:3px solid #ccc;color:#444}.bad{color:#a00;font-weight:600}h2{border-top:1px solid #ddd;"
         "padding-top:1rem}")


def html_page(doc: dict[str, Any]) -> str:
    """A self-contained page: inline style, no script, every value escaped."""
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{e('Audit report: ' + doc['policy'])}</title>\n<style>{STYLE}</style>\n</head>\n<body>"]
    for b in blocks(doc):
        if b[0] == "h":
            parts.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            parts.append(("<p class=\"bad\">" if b[2] == "bad" else "<p>") + f"{e(b[1])}</p>")
        elif b[0] == "quote":
            parts.append(f"<blockquote>{e(b[1])}</blockquote>")
        elif b[0] == "list":
            parts.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in b[1]) + "</ul>")
        else:
            head = "".join(f"<th>{e(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(parts) + "\n</body>\n</html>\n"


def write_report(root: Path, out_dir: Path, ref: str = "HEAD", deployed: str | None = None,
                 fmt: str = "all") -> list[Path]:
    """Write `<policy>.md`, `.json` and `.html` (or the one `fmt` names) into `out_dir`, each atomically."""
    if fmt not in ("all", *FORMATS):
        raise InvalidInput([Problem("command line", None, "--format", f"{fmt!r}: expected all, md, json or html")])
    doc = collect(root, ref, deployed)
    out = []
    for f in FORMATS if fmt == "all" else (fmt,):
        path = Path(out_dir) / f"{doc['policy']}.{f}"
        if f == "json":
            atomic_write_json(path, doc)
        else:
            atomic_write_text(path, markdown(doc) if f == "md" else html_page(doc))
        out.append(path)
    return out


def recorded_digest(events: list[dict[str, Any]], policy: str, version: str) -> str | None:
    """The model md5 the ledger's `proposed` event of `policy@version` recorded, or None (the base model)."""
    for ev in events:
        if ev.get("event") == "proposed":
            for subject in ev.get("subjects") or []:
                if subject.get("name") == f"{policy}@{version}" and str(subject.get("digest", "")).startswith("md5:"):
                    return subject["digest"][4:]
    return None


# post-market monitoring and the EU AI Act map ------------------------------------------------------------------

def monitoring_section(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parts of `rlops monitor`'s file the report shows (None when no monitoring figures are committed)."""
    if not data or not isinstance(data.get("versions"), list):
        return None
    keep = ("version", "stage", "from", "to", "interactions", "users", "feedback_rate", "rating", "edit_rate",
            "refusal_rate", "over_refusal_rate", "tool_error_rate", "latency_ms")
    return {"bucket": data.get("bucket"), "interactions": data.get("interactions"), "feedback": data.get("feedback"),
            "versions": [{k: v.get(k) for k in keep} for v in data["versions"] if isinstance(v, dict)],
            "canaries": [{k: c.get(k) for k in ("version", "against", "from", "to", "worse", "metrics")}
                         for c in data.get("canaries") or [] if isinstance(c, dict)],
            "flagged": data.get("flagged") or []}


def _pct(x: Any) -> str:
    return "not recorded" if not isinstance(x, (int, float)) else f"{100 * x:.1f}%"


def monitoring_blocks(doc: dict[str, Any]) -> list[Block]:
    m = doc.get("monitoring")
    out: list[Block] = [("h", 2, "Post-market monitoring")]
    if not m:
        return out + [("p", f"No monitoring figures are committed ({layout.MONITOR}): run `rlops monitor` over the "
                            "production logs and commit its file to record how each version behaved in production.",
                       "bad")]
    out.append(("p", f"From `rlops monitor` ({layout.MONITOR}, committed at {doc['head']}) over "
                     f"{_v(m['interactions'])} and {_v(m['feedback'])}; per version and serving stage. Over-refusal: "
                     "an answer the refusal grader marks refused where a person's edit does not refuse or the "
                     "rating is in the lower half of its scale.", None))
    out.append(("table", ["version", "stage", "from", "to", "interactions", "users", "feedback", "rating", "edited",
                          "refused", "over-refused", "tool errors", "latency p50 ms"],
                [[_v(v["version"]), _v(v["stage"]), _v(v["from"]), _v(v["to"]), _v(v["interactions"]), _v(v["users"]),
                  _pct(v["feedback_rate"]), _v(v["rating"]), _pct(v["edit_rate"]), _pct(v["refusal_rate"]),
                  _pct(v["over_refusal_rate"]), _pct(v["tool_error_rate"]),
                  _v((v.get("latency_ms") or {}).get("p50"))] for v in m["versions"]]))
    for c in m["canaries"]:
        worse = [x for x in c.get("metrics") or [] if x.get("worse")]
        out.append(("p", f"Canary {_v(c['version'])} against production {_v(c['against'])} ({_v(c['from'])} to "
                         f"{_v(c['to'])}): " + ("SIGNIFICANTLY WORSE on " + ", ".join(x["metric"] for x in worse)
                                                if worse else "not significantly worse on any tested metric") + ".",
                    "bad" if worse else None))
    return out


EU_AI_ACT = (  # (article, what it asks, where this repository holds records for it, what it does not hold)
    ("Art. 9, risk management",
     "a risk management system run through the whole life cycle: risks identified, evaluated, tested, mitigated",
     "each cycle's rationale and declared gates (specs/cycles/), red-team and regression evaluation, the gate "
     "verdict of every promotion (its evidence files), rollbacks in audit/ledger.jsonl",
     "the risk management process itself: the list of known and foreseeable risks, acceptance criteria, the "
     "reasons the gates and suites cover them, and its documentation"),
    ("Art. 12, record keeping",
     "automatic recording of events over the system's lifetime",
     "interaction and feedback logs (docs/records.md, rlops.observe.Recorder), the hash-chained ledger, signed "
     "merges and tags, checked by `rlops audit verify`",
     "log retention periods, storage, access control and deletion; logs of the serving stack outside rlops"),
    ("Art. 14, human oversight",
     "people able to understand, monitor, override and stop the system",
     "the approvers and signer of every promotion and rollback (specs/policy.yaml sets how many approvals), "
     "`rlops monitor`'s canary alarm and `rlops rollback`",
     "who the overseers are, their training and authority, how they stop or override the system in operation, "
     "and measures against automation bias"),
    ("Art. 72, post-market monitoring",
     "a plan to collect and analyse performance data after the system is placed on the market",
     f"this report's post-market monitoring section ({layout.MONITOR}): each version's figures per stage and day "
     "or week, canary against production",
     "the post-market monitoring plan in the technical documentation, the data gathered from deployers, and the "
     "reporting of serious incidents (Art. 73)"),
)


def eu_ai_act_blocks(doc: dict[str, Any]) -> list[Block]:
    s = doc["summary"]
    counts = (f"This history: {s['ledger_events']} ledger events, {s['promotions']} promotion(s), {s['rollbacks']} "
              f"rollback(s); monitoring figures {'committed' if doc.get('monitoring') else 'not committed'}.")
    return [("h", 2, "EU AI Act: where the records are"),
            ("p", "Where this repository keeps records relevant to obligations the EU AI Act sets for high-risk AI "
                  "systems, and what it does not hold. It maps records only: whether a system is high-risk, who is "
                  "its provider or deployer, and whether the obligations are met are for them to assess. " + counts,
             None),
            ("table", ["article", "asks for", "records here", "still to be supplied by the provider or deployer"],
             [list(row) for row in EU_AI_ACT])]
