"""PII redaction before anything is written: a regex tier on every decoded text, Presidio as an optional deeper tier.

The regex tier finds e-mail addresses, phone numbers, card numbers (13-19 digits that pass the Luhn check)
and IP addresses. It runs on decoded text, never on encoded JSON: `redact_json` decodes each string of a JSON
text (a row's messages as they will be written, a quarantined line), redacts it with `redact_text` and encodes
again only the strings it changed, so an escape (`\\u0001`, `\\n`, `\\"`) can neither be split nor read as
text, and the JSON stays valid. A string that is itself JSON (tool-call arguments) is redacted the same way, one
level down. In SQL, `pii_redact(t)` first asks the cheap GATE (the same patterns, made to match across JSON
escapes, on the encoded text), and calls `redact_json` only for texts it flags: most hold no PII.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from rlops.errors import RlopsError

TYPES = ("card", "email", "ip", "phone")  # replaced in this order: a card is never read as a phone or an e-mail
TOKENS = {"email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_H = "[0-9a-fA-F]{1,4}"
# on decoded text: (boundary)(the thing)(boundary after); group 2 is replaced, groups 1 and 3 are kept
PATTERNS = {
    "email": r"(^|[^A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})()",
    "card": r"(^|[^0-9])([0-9](?:[ \-]?[0-9]){12,18})([^0-9]|$)",
    "ip": rf"(^|[^0-9A-Za-z.:])({_OCTET}(?:\.{_OCTET}){{3}}|(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,6}}:(?:{_H}(?::{_H}){{0,5}})?)([^0-9A-Za-z.:]|$)",
    "phone": r"(^|[^0-9A-Za-z+])((?:\+[0-9]{1,3}[ \-]?)?(?:\([0-9]{2,5}\)[ \-]?|[0-9]{2,5}[ \-])[0-9]{3,4}[ \-]?[0-9]{3,4})([^0-9]|$)",
}
_PY = {kind: re.compile(p) for kind, p in PATTERNS.items()}
_MAYBE = re.compile(r"[0-9@:]")  # every match holds one of these (an IPv6 address may have no digit)
_SHORTEST = 6  # characters in the shortest possible match (a@b.cd)

# The gate, on encoded JSON text: each boundary also accepts a JSON escape, so whatever the patterns find in a
# decoded string, the gate finds in its encoding (a superset: it may flag a text in which nothing is replaced).
_ESC = r'\\[nrtbf"/\\]|\\u[0-9a-fA-F]{4}'
GATE = "|".join(f"(?:{p.replace('(^|[^', '(^|' + _ESC + '|[^', 1)})" for p in PATTERNS.values())
_GATE = re.compile(GATE)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string literal (unrolled: fast in re)


def luhn(digits: str) -> bool:
    """The Luhn check of a card number (spaces and dashes ignored)."""
    ds = [int(c) for c in digits if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(ds)):
        total += (2 * d - 9 if d > 4 else 2 * d) if i % 2 else d
    return len(ds) >= 13 and total % 10 == 0


def _card(m: re.Match) -> str:
    return m.group(1) + (TOKENS["card"] if luhn(m.group(2)) else m.group(2)) + m.group(3)


def redact_text(text: str) -> tuple[str, dict[str, int]]:
    """Decoded text with every PII match replaced by its token: (redacted text, count per type)."""
    counts = dict.fromkeys(TYPES, 0)
    if _MAYBE.search(text) is None:  # no digit, '@' or ':': nothing any pattern could match
        return text, counts
    for kind in TYPES:
        pattern = _PY[kind]
        if pattern.search(text) is None:  # most texts hold one kind at most: skip the others' passes
            continue
        before = text
        for _ in range(2):  # twice: the boundary character after one match may be the one before the next
            text = pattern.sub(_card if kind == "card" else
                               (lambda m, kind=kind: m.group(1) + TOKENS[kind] + m.group(3)), text)
        counts[kind] = text.count(TOKENS[kind]) - before.count(TOKENS[kind])
    return text, counts


def redact_json(text: str, gated: bool = False) -> tuple[str, dict[str, int]]:
    """JSON text (or a line that is meant to be JSON) with the PII in its decoded strings replaced.

    Each string literal is decoded, redacted and, only when that changed it, encoded again (json.dumps, UTF-8 kept);
    the text between literals (numbers, or whatever a broken line holds) is redacted as it is, a match there
    becoming a quoted token so that a valid document stays valid. Unchanged input comes back byte for byte.
    `gated`: the caller already found GATE in `text` (SQL does, with a faster regex engine)."""
    counts = dict.fromkeys(TYPES, 0)
    if not gated and not _GATE.search(text):  # most texts hold nothing the patterns could find, escaped or not
        return text, counts
    out: list[str] = []
    pos = 0
    for m in _STRING.finditer(text):
        out.append(_between(text[pos:m.start()], counts))
        out.append(_literal(m.group(), counts))
        pos = m.end()
    out.append(_between(text[pos:], counts))
    return "".join(out), counts


def _add(counts: dict[str, int], more: dict[str, int]) -> None:
    for kind, n in more.items():
        counts[kind] += n


def _between(text: str, counts: dict[str, int]) -> str:
    if len(text) < _SHORTEST or not _MAYBE.search(text):
        return text
    redacted, found = redact_text(text)
    _add(counts, found)
    for token in TOKENS.values():  # a number replaced outside a string becomes a string
        redacted = redacted.replace(token, f'"{token}"')
    return redacted


def _literal(literal: str, counts: dict[str, int]) -> str:
    if len(literal) < _SHORTEST + 2 or _MAYBE.search(literal) is None:  # names like "role", "content"
        return literal
    if "\\" not in literal:
        value = literal[1:-1]
    else:
        try:
            value = json.loads(literal)
        except (ValueError, RecursionError):  # a broken literal in a broken line: its characters as they are
            redacted, found = redact_text(literal)
            _add(counts, found)
            return redacted
    stripped = value.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]") and _is_json(stripped):
        redacted, found = redact_json(value)  # JSON inside a string (tool-call arguments): one level down
    else:
        redacted, found = redact_text(value)
    if redacted == value:
        return literal
    _add(counts, found)
    return json.dumps(redacted, ensure_ascii=False)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_macros(con: Any) -> None:
    """SQL: pii_redact(t) (the redacted JSON text) and pii_found(t, redacted, type) (how many were replaced).

    pii_redact runs `redact_json` in Python (a DuckDB function) on the texts the gate flags, in SQL."""
    from duckdb import sqltypes

    con.create_function("pii_redact_json", lambda t: redact_json(t, gated=True)[0], [sqltypes.VARCHAR], sqltypes.VARCHAR,
                        side_effects=False)
    con.execute(f"CREATE OR REPLACE MACRO pii_redact(t) AS CASE WHEN regexp_matches(t::VARCHAR, {sql_literal(GATE)}) "
                "THEN pii_redact_json(t::VARCHAR) ELSE t::VARCHAR END")
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
