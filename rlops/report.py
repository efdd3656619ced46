"""The gate report: one Markdown page that a reviewer reads in the pull request."""

from __future__ import annotations

from typing import Any

from rlops import layout


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
           signals: dict[str, Any], train: dict[str, Any], signals_md: str = "") -> str:
    """The gate's report, the body of the pull request; `signals_md` is the extract stage's signals.md section."""
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
    lines += ["",
              "## Before / after", "", "| metric | incumbent | candidate | n |", "|---|---:|---:|---:|"]
    for key in sorted(set(incumbent["metrics"]) | set(candidate["metrics"])):
        i, k = incumbent["metrics"].get(key, {}), candidate["metrics"].get(key, {})
        lines.append(f"| `{key}` | {_f(i.get('mean'))} ± {_f(i.get('stderr'))} | {_f(k.get('mean'))} ± "
                     f"{_f(k.get('stderr'))} | {k.get('n', i.get('n', 0))} |")
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
