"""PII redaction before anything is written: a regex tier in SQL on every text, Presidio as an optional deeper tier.

The regex tier finds e-mail addresses, phone numbers, card numbers (13-19 digits that pass the Luhn check)
and IP addresses. It runs on JSON text (a row's messages as they will be written), so every pattern starts
after a boundary that also accepts a JSON escape (`\\n`, `\\"`, `\\u00e9`, ...): an escape is never split, and
the text stays valid JSON. The same patterns run in Python (the `re` module) on quarantined lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rlops.errors import RlopsError

TYPES = ("card", "email", "ip", "phone")  # replaced in this order: a card is never read as a phone or an e-mail
TOKENS = {"email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}
HIDE = "\ue000"  # stands in for an escaped backslash (two characters) while the patterns run

_ESC = r'\\[nrtbf"/\\]|\\u[0-9a-fA-F]{4}'  # one JSON escape
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_H = "[0-9a-fA-F]{1,4}"
# (boundary)(the thing)(boundary after); group 2 is replaced, groups 1 and 3 are kept
PATTERNS = {
    "email": rf"(^|[^A-Za-z0-9._%+\-\\]|{_ESC})([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{{2,}})()",
    "card": rf"(^|[^0-9\\]|{_ESC})([0-9](?:[ \-]?[0-9]){{12,18}})([^0-9]|$)",
    "ip": rf"(^|[^0-9A-Za-z.:\\]|{_ESC})({_OCTET}(?:\.{_OCTET}){{3}}|(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,6}}:(?:{_H}(?::{_H}){{0,5}})?)([^0-9A-Za-z.:]|$)",
    "phone": rf"(^|[^0-9A-Za-z+\\]|{_ESC})((?:\+[0-9]{{1,3}}[ \-]?)?(?:\([0-9]{{2,5}}\)[ \-]?|[0-9]{{2,5}}[ \-])[0-9]{{3,4}}[ \-]?[0-9]{{3,4}})([^0-9]|$)",
}
# a cheap test first: most texts have none of these, and skip the per-type work
GATE = "|".join(f"(?:{p})" for p in PATTERNS.values())
_PY = {kind: re.compile(p) for kind, p in PATTERNS.items()}
_PY_GATE = re.compile(GATE)


def luhn(digits: str) -> bool:
    """The Luhn check of a card number (spaces and dashes ignored)."""
    ds = [int(c) for c in digits if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        total += (2 * d - 9 if d > 4 else 2 * d) if i % 2 else d
    return len(ds) >= 13 and total % 10 == 0


def redact_text(text: str) -> tuple[str, dict[str, int]]:
    """The regex tier in Python, step for step as in SQL: (redacted text, count per type). Used for quarantined lines."""
    original = text
    text = text.replace("\\\\", HIDE)  # an escaped backslash: every backslash left starts an escape
    if not _PY_GATE.search(text):  # most lines hold none: skip the per-type passes
        return text.replace(HIDE, "\\\\"), dict.fromkeys(TYPES, 0)
    for kind in TYPES:
        pattern = _PY[kind]
        for _ in range(2):  # twice: the boundary character after one match may be the one before the next
            if kind == "card":  # Luhn-valid candidates, each replaced wherever it occurs
                for card in [m.group(2) for m in pattern.finditer(text) if luhn(m.group(2))]:
                    text = text.replace(card, TOKENS["card"])
            else:
                text = pattern.sub(lambda m, kind=kind: m.group(1) + TOKENS[kind] + m.group(3), text)
    text = text.replace(HIDE, "\\\\")
    return text, {k: text.count(TOKENS[k]) - original.count(TOKENS[k]) for k in TYPES}


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_macros(con: Any) -> None:
    """SQL macros: pii_redact(t) (the redacted text) and pii_found(t, redacted, type) (how many were replaced)."""
    p = {kind: sql_literal(pattern) for kind, pattern in PATTERNS.items()}
    # Luhn in SQL: digits right to left, every second one doubled (minus 9 above 9)
    con.execute("""CREATE OR REPLACE MACRO pii_luhn(c) AS (
        list_sum(list_transform(string_split(reverse(regexp_replace(c, '[^0-9]', '', 'g')), ''),
            lambda d, i: CASE WHEN i % 2 = 0 THEN (CASE WHEN d::INT > 4 THEN 2 * d::INT - 9 ELSE 2 * d::INT END)
                              ELSE d::INT END)) % 10 = 0)""")
    con.execute("CREATE OR REPLACE MACRO pii_cards(t) AS list_reduce(list_prepend(t, list_filter("
                f"regexp_extract_all(t, {p['card']}, 2), lambda c: pii_luhn(c))), lambda acc, c: replace(acc, c, '[CARD]'))")
    # each pattern twice: the boundary character after one match may be the one before the next
    text = "pii_cards(pii_cards(replace(t::VARCHAR, '\\\\', chr(57344))))"
    for kind in ("email", "ip", "phone"):
        for _ in range(2):
            text = f"regexp_replace({text}, {p[kind]}, '\\1{TOKENS[kind]}\\3', 'g')"
    con.execute(f"CREATE OR REPLACE MACRO pii_redact(t) AS CASE WHEN regexp_matches(t::VARCHAR, {sql_literal(GATE)}) "
                f"THEN replace({text}, chr(57344), '\\\\') ELSE t::VARCHAR END")
    con.execute("CREATE OR REPLACE MACRO pii_tokens(t, token) AS (length(t) - length(replace(t, token, ''))) // length(token)")
    con.execute("CREATE OR REPLACE MACRO pii_found(t, r, token) AS pii_tokens(r, token) - pii_tokens(t, token)")


def presidio_analyzer() -> Any:
    """Presidio's analyzer, or a clear error when it is not installed."""
    try:
        from presidio_analyzer import AnalyzerEngine
    except ImportError:
        raise RlopsError("extract.pii_tier is presidio, but Presidio is not installed",
                         hint="pip install presidio-analyzer (and a spaCy model), or set extract.pii_tier: regex") from None
    return AnalyzerEngine()


def presidio_redact(analyzer: Any, value: Any, counts: dict[str, int]) -> Any:
    """Every string inside a JSON value, with what Presidio finds replaced by [ENTITY_TYPE]."""
    if isinstance(value, str):
        found = sorted(analyzer.analyze(text=value, language="en"), key=lambda r: r.start, reverse=True)
        last = len(value) + 1
        for r in found:
            if r.end > last:  # overlapping findings: the later one wins
                continue
            value = value[: r.start] + f"[{r.entity_type}]" + value[r.end:]
            counts[f"presidio_{r.entity_type.lower()}"] = counts.get(f"presidio_{r.entity_type.lower()}", 0) + 1
            last = r.start
        return value
    if isinstance(value, list):
        return [presidio_redact(analyzer, v, counts) for v in value]
    if isinstance(value, Mapping):
        return {k: (v if k == "meta" else presidio_redact(analyzer, v, counts)) for k, v in value.items()}
    return value
