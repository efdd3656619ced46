"""The gate report: one Markdown page that a reviewer reads in the pull request, with its plots beside it.

The plots are PNG files next to report.md (`layout.REPORT_PLOTS`, linked relatively, so the pull request shows them
without an image host), each drawn from rows that are files of their own where DVC reads them too: the scores from
results.json via scores.csv, the data via data.csv, the training curve from curve.csv, the win-rate from the
verdict. matplotlib is imported inside `draw_plots` only (the `train` extra), so importing this module stays light.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from rlops import layout

Z95 = 1.959964  # two-sided 95% normal interval of one model's mean (the gates use paired bounds of the difference)
EXAMPLES = 3  # items shown per suite, where the two models differ most
CLIP = 280  # characters of a prompt or an answer shown in the examples


def _f(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items()) if v) or "none"


def _result(g: dict[str, Any]) -> str:
    if g.get("informative") is False:
        return "⚠️ uninformative (allowed)" if g["passed"] else "❌ uninformative"
    return "✅ pass" if g["passed"] else "❌ fail"


# the data a method's metrics count, and the keys it may report, in the order the report names them
_DATA = (("pairs", "pairs"), ("rows", "rows"), ("desirable", "desirable answers"), ("undesirable", "undesirable answers"))
_KEYS = ("reward_margin", "reward_accuracy", "kl", "token_accuracy", "desirable_weight", "undesirable_weight")


def training_line(method: str, train: dict[str, Any]) -> str:
    """One line on the training: method (a recipe's chain), steps, data, loss, and whatever the method reported.
    A recipe's metrics are its last step's; artifacts/train/steps/recipe.json has every step's."""
    data = " and ".join(f"{train[k]} {words}" for k, words in _DATA if train.get(k) is not None)
    more = "".join(f", {k.replace('_', ' ')} {train[k]}" for k in _KEYS if train.get(k) is not None)
    last = f" (last step: {train.get('method')})" if method != train.get("method") else ""
    return (f"- {method}{last}: {train.get('steps')} steps on {data or 'its data'}; "
            f"loss {train.get('loss_first')} → {train.get('loss')}{more}")


def render(params: dict[str, Any], verdict: dict[str, Any], incumbent: dict[str, Any], candidate: dict[str, Any],
           signals: dict[str, Any], train: dict[str, Any], signals_md: str = "", *,
           samples: dict[str, list[dict[str, Any]]] | None = None, plots: bool = False) -> str:
    """The gate's report, the body of the pull request; `signals_md` is the extract stage's signals.md section.
    `samples` (model -> samples.jsonl rows) adds the examples where the models differ most; `plots` links the PNGs
    that `draw_plots` wrote next to report.md."""
    c = params["cycle"]
    conf = int(round(100 * params["gate"]["bootstrap"]["confidence"]))
    lines = [
        f"# Cycle {c['number']:04d} · {c['policy']}: {'PASS' if verdict['passed'] else 'FAIL'}",
        "",
        f"- **Spec:** `{params['plan']['spec']}`  ",
        f"- **Parent:** `{c['parent']}` ({params['model']['name']}) · **method:** {params['train']['method']} · "
        f"**promotion:** {c['promotion']['mode']}",
        f"- **Rationale:** {c['rationale']}",
        "",
        "## Verdict",
        "",
        "| gate | rule | incumbent | candidate | diff | bound | result | why |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for g in verdict["gates"]:
        bound = _f(g.get("bound"), True)  # the rule says which bound it compared, if any
        lines.append(f"| `{g['metric']}` | {g['rule']} | {_f(g['incumbent'])} | {_f(g['candidate'])} | "
                     f"{_f(g['diff'], True)} | {bound} | {_result(g)} | {g['reason']} |")
        if g["regressions"]:
            lines.append(f"| | | | | | | | regressed: {', '.join(g['regressions'][:10])} |")
    lines += ["", f"Bounds are one-sided {conf}% paired-bootstrap bounds on the per-item difference, unless a gate "
              "sets its own confidence; differences are oriented so that positive means the candidate is better."]
    lower = [g["metric"] for g in verdict["gates"] if g.get("higher_is_better") is False]
    if lower:
        lines += ["", f"Lower is better on {', '.join(f'`{m}`' for m in lower)}: there the difference and its bound "
                  "are incumbent − candidate."]
    blind = [g["metric"] for g in verdict["gates"] if g.get("informative") is False]
    if blind:
        lines += ["", f"**Uninformative evaluation:** on {', '.join(f'`{m}`' for m in blind)} the candidate and the "
                  "incumbent scored the same on every item, so these gates cannot tell the two models apart and give "
                  "no reason to move production to the candidate. Such a gate fails unless the spec sets "
                  "`allow_uninformative: true` on it; make the suite discriminate (harder items, a metric with more "
                  "levels) or check that the models really answer."]
    lines += judged_and_sized(params, verdict)
    lines += ["",
              "## Before / after", "", "| metric | incumbent | candidate | n |", "|---|---:|---:|---:|"]
    for key in sorted(set(incumbent["metrics"]) | set(candidate["metrics"])):
        i, k = incumbent["metrics"].get(key, {}), candidate["metrics"].get(key, {})
        lines.append(f"| `{key}` | {_f(i.get('mean'))} ± {_f(i.get('stderr'))} | {_f(k.get('mean'))} ± "
                     f"{_f(k.get('stderr'))} | {k.get('n', i.get('n', 0))} |")
    if plots:
        lines += ["", "## Plots", "", *(f"![{alt}]({Path(path).name})" for alt, path in (
            ("Scores per suite, both models, with 95% intervals", layout.SCORES_PNG),
            ("Training curve", layout.CURVE_PNG), ("Data by source and rule", layout.DATA_PNG)))]
    if samples:
        lines += examples_section(verdict, samples.get("incumbent", []), samples.get("candidate", []))
    pairs = signals.get("pairs", {})
    lines += ["", "## Data", "",
              f"- Records read: {_counts(signals.get('records_read', {}))}",
              f"- Pairs: {pairs.get('total', 0)} ({', '.join(f'{k} {v}' for k, v in sorted(pairs.items()) if k != 'total')})",
              f"- Dropped: {_counts(signals.get('dropped', {}))}",
              f"- Quarantined (malformed, see {layout.QUARANTINE}): {_counts(signals.get('quarantined', {}))}",
              *(["", signals_md.strip()] if signals_md.strip() else []),
              "", "## Training", "",
              training_line(params["train"]["method"], train),
              ""]
    return "\n".join(lines)


# ---- the judged win-rate and the sample-size warnings (issue 13) ------------------------------------------------

def judged_and_sized(params: dict[str, Any], verdict: dict[str, Any]) -> list[str]:
    """Report lines for win_rate gates (which judge, where its verdicts are) and for every gate whose suite was too
    small for it to pass even with a perfect candidate (`gates.needed_items`, the rule's own function)."""
    import json

    from rlops.gates import needed_items

    rules = params["gate"].get("rules") or []
    lines = []
    for g, rule in zip(verdict["gates"], rules):
        if g["rule"] == "win_rate" and isinstance(rule.get("judge"), dict):
            lines.append(f"- `{g['metric']}`: judged by `{json.dumps(rule['judge'], sort_keys=True)}` on {g['n']} "
                         f"items, each asked in both orders (a verdict that flips is a tie; ties count half); every "
                         f"verdict is in `{layout.JUDGMENTS}`.")
    lines = ["", "Win-rate:", "", *lines] if lines else []
    small = [(g, needed_items(rule, g["n"], params["gate"]["bootstrap"])) for g, rule in zip(verdict["gates"], rules)
             if g["n"]]
    small = [(g, why) for g, why in small if why]
    if small:
        lines += ["", "**Too few items to decide:**", ""]
        lines += [f"- `{g['metric']}` ({g['rule']}): {why}." for g, why in small]
    return lines
# ---- examples where the models differ most -----------------------------------------------------------------------

def _clip(text: Any, limit: int = CLIP) -> str:
    """One line of Markdown-safe text, cut at a word near `limit` characters."""
    t = " ".join(str(text if not isinstance(text, list) else " / ".join(
        str(m.get("content", m)) if isinstance(m, dict) else str(m) for m in text)).split())
    if len(t) > limit:
        cut = t.rfind(" ", 0, limit)
        t = t[:cut if cut > limit // 2 else limit].rstrip() + " …"
    return t.replace("|", "\\|").replace("<", "&lt;") or "(empty)"


def differing(verdict: dict[str, Any], incumbent: list[dict[str, Any]], candidate: list[dict[str, Any]],
              k: int = EXAMPLES) -> dict[str, list[tuple[dict[str, Any], dict[str, Any], list[str]]]]:
    """Per suite, the `k` items whose scores differ most between the models: (incumbent row, candidate row, metrics).

    The difference is summed over the metrics the gates read for that suite (all of the item's metrics when no gate
    names one); ties keep the item order. Items the models scored alike are not examples."""
    gated: dict[str, list[str]] = {}
    for g in verdict.get("gates", []):
        suite, _, name = str(g.get("metric", "")).partition(".")
        if name and name not in gated.setdefault(suite, []):
            gated[suite].append(name)
    inc = {(it["suite"], it["id"]): it for it in incumbent}
    out: dict[str, list[tuple[dict[str, Any], dict[str, Any], list[str]]]] = {}
    for c in candidate:
        i = inc.get((c["suite"], c["id"]))
        if i is None:
            continue
        names = [m for m in gated.get(c["suite"], []) if m in c["scores"] and m in i["scores"]] or \
            sorted(c["scores"].keys() & i["scores"].keys())
        gap = sum(abs(float(c["scores"][m]) - float(i["scores"][m])) for m in names)
        if gap > 0:
            out.setdefault(c["suite"], []).append((gap, i, c, names))
    return {suite: [(i, c, names) for _, i, c, names in sorted(rows, key=lambda r: -r[0])[:k]]
            for suite, rows in sorted(out.items())}


def examples_section(verdict: dict[str, Any], incumbent: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> list[str]:
    chosen = differing(verdict, incumbent, candidate)
    lines = ["", "## Where the models differ most", "",
             f"Up to {EXAMPLES} items per suite with the largest score difference (texts cut at about {CLIP} "
             "characters; the whole answers are in the evaluation samples)."]
    if not chosen:
        lines += ["", "The two models scored every item alike."]
    for suite, rows in chosen.items():
        lines += ["", f"### {suite}", ""]
        for n, (i, c, names) in enumerate(rows, 1):
            scores = ", ".join(f"{m} {float(i['scores'][m]):.3f} → {float(c['scores'][m]):.3f}" for m in names)
            lines += [f"{n}. `{c['id']}` ({scores}, incumbent → candidate)",
                      f"   - **Prompt:** {_clip(c.get('prompt', ''))}",
                      f"   - **Incumbent:** {_clip(i.get('response', ''))}",
                      f"   - **Candidate:** {_clip(c.get('response', ''))}"]
    return lines


# ---- plot data (the rows DVC plots reads) and the plots ------------------------------------------------------------

def score_rows(incumbent: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    """scores.csv: per suite.metric and model, the mean and its 95% normal interval (from results.json)."""
    rows = []
    for key in sorted(set(incumbent["metrics"]) | set(candidate["metrics"])):
        for model, res in (("incumbent", incumbent), ("candidate", candidate)):
            m = res["metrics"].get(key)
            if m is None:
                continue
            half = Z95 * float(m.get("stderr") or 0.0)
            rows.append({"series": f"{key} {model}", "metric": key, "model": model, "mean": round(m["mean"], 6),
                         "low": round(m["mean"] - half, 6), "high": round(m["mean"] + half, 6), "n": m.get("n", 0)})
    return rows


def data_rows(signals: dict[str, Any]) -> list[dict[str, Any]]:
    """data.csv: records read and quarantined per source file, training rows per set and extraction rule."""
    rows = []
    for source, c in sorted((signals.get("sources") or {}).items()):
        for what in ("read", "quarantined"):
            rows.append({"series": f"{what} {source}", "group": f"records {what}", "name": source,
                         "count": int(c.get(what, 0))})
    for kind in ("pairs", "unpaired", "sft"):
        for rule, n in sorted((signals.get(kind) or {}).items()):
            if rule in ("total", "label_true", "label_false") or not isinstance(n, int):
                continue
            rows.append({"series": f"{kind} {rule}", "group": f"{kind} rows", "name": rule, "count": n})
    return rows


def csv_text(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


SCORE_FIELDS = ["series", "metric", "model", "mean", "low", "high", "n"]
DATA_FIELDS = ["series", "group", "name", "count"]


def win_rates(params: dict[str, Any], verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict's win_rate gates (rlops/gates/win_rate.py): rate, lower bound and the declared minimum."""
    mins = {r.get("metric"): r.get("min") for r in (params.get("gate") or {}).get("rules") or []
            if r.get("rule") == "win_rate"}
    return [{"metric": g["metric"], "rate": g.get("candidate"), "bound": g.get("bound"), "min": mins.get(g["metric"])}
            for g in verdict.get("gates", []) if g.get("rule") == "win_rate" and g.get("candidate") is not None]


def _unit_scale(metric: str, scores: list[dict[str, Any]]) -> bool:
    """Whether `suite.metric` scores within [0, 1] (its registered range; by its values when it is not registered),
    so that it shares the scores plot's axis. A length in characters stays in the table."""
    from rlops import components
    from rlops.errors import InvalidInput

    try:
        return tuple(components.get("metric", metric.split(".", 1)[-1]).range or ()) == (0.0, 1.0)
    except InvalidInput:
        return all(0.0 <= r["mean"] <= 1.0 for r in scores if r["metric"] == metric)


def draw_plots(root: Path, params: dict[str, Any], verdict: dict[str, Any], scores: list[dict[str, Any]],
               data: list[dict[str, Any]], curve_csv: str) -> list[str]:
    """Write the report's PNGs (layout.REPORT_PLOTS) and return their paths. The same inputs give the same bytes:
    matplotlib's default style whatever the user's matplotlibrc, no Software or date metadata."""
    import matplotlib
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rlops.io import atomic_path

    def save(fig: Figure, rel: str) -> str:
        FigureCanvasAgg(fig)
        with atomic_path(root / rel) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        return rel

    colors = {"incumbent": "#8c8c8c", "candidate": "#1f77b4"}
    written = []
    with matplotlib.style.context("default"), matplotlib.rc_context({"svg.hashsalt": "rlops", "font.size": 9}):
        # scores per suite.metric, both models, 95% intervals; a second panel for each judged win-rate
        wins = win_rates(params, verdict)
        keys = sorted({r["metric"] for r in scores if _unit_scale(r["metric"], scores)})
        fig = Figure(figsize=(7.5, 1.2 + 0.45 * max(len(keys), 1) + (1.4 if wins else 0)))
        grid = fig.add_gridspec(2 if wins else 1, 1, height_ratios=[max(len(keys), 1), 1.6 + len(wins)] if wins else None)
        ax = fig.add_subplot(grid[0])
        for off, model in ((0.18, "incumbent"), (-0.18, "candidate")):
            rows = {r["metric"]: r for r in scores if r["model"] == model}
            ys = [len(keys) - 1 - j + off for j, k in enumerate(keys) if k in rows]
            pts = [rows[k] for k in keys if k in rows]
            ax.errorbar([r["mean"] for r in pts], ys, xerr=[[r["mean"] - max(r["low"], 0.0) for r in pts],
                                                               [min(r["high"], 1.0) - r["mean"] for r in pts]],
                        fmt="o", color=colors[model], capsize=3, label=model)
        ax.set_yticks(range(len(keys)), list(reversed(keys)))
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.6, max(len(keys), 1) - 0.4)
        ax.set_xlabel("mean score (95% interval of each model's mean, within [0, 1]); unbounded metrics: the table")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title("Scores per suite")
        if wins:
            wx = fig.add_subplot(grid[1])
            for j, w in enumerate(wins):
                wx.plot([w["rate"]], [j], "o", color=colors["candidate"])
                if w["bound"] is not None:
                    wx.plot([w["bound"], w["rate"]], [j, j], "-", color=colors["candidate"])
                    wx.plot([w["bound"]], [j], "|", color=colors["candidate"], markersize=12)
                if w["min"] is not None:
                    wx.plot([w["min"]], [j], "x", color="#d62728", markersize=8)
            wx.axvline(0.5, color="#8c8c8c", linestyle=":", linewidth=1)
            wx.set_yticks(range(len(wins)), [w["metric"] for w in wins])
            wx.set_xlim(0, 1)
            wx.set_xlabel("candidate win-rate (ties half); bar: from its lower bound; x: the gate's minimum")
        fig.tight_layout()
        written.append(save(fig, layout.SCORES_PNG))

        # the training curve
        rows = list(csv.DictReader(io.StringIO(curve_csv)))
        fig = Figure(figsize=(7.5, 2.8))
        ax = fig.add_subplot()
        series = [c for c in (rows[0].keys() if rows else []) if c != "step"]
        for name in series:
            pts = [(float(r["step"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
            pts = [(x, y) for x, y in pts if math.isfinite(y)]
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker=".", label=name)
        ax.set_xlabel("step")
        ax.set_title("Training curve" if rows else "Training curve (no steps recorded)")
        ax.grid(alpha=0.3)
        if series and rows:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        written.append(save(fig, layout.CURVE_PNG))

        # the data: records per source file, rows per set and rule
        fig = Figure(figsize=(7.5, 1.2 + 0.3 * max(len(data), 1)))
        ax = fig.add_subplot()
        labels = [f"{r['group']}: {r['name']}" for r in data]
        ax.barh(range(len(data)), [r["count"] for r in data], color=["#8c8c8c" if r["group"].startswith("records")
                                                                    else colors["candidate"] for r in data])
        ax.set_yticks(range(len(data)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("count")
        ax.set_title("Data by source and rule")
        fig.tight_layout()
        written.append(save(fig, layout.DATA_PNG))
    return written
