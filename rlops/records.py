"""The interaction and feedback record formats (v1): the one definition every reader and writer checks against.

The recorder (rlops.observe.recorder), the importers, `rlops validate` (rlops.spec.validate) and the extract stage
(its SQL macros in rlops.extract.load) take the rules below from here; the JSON Schemas shipped for editors
(rlops/spec/schemas/{interaction,feedback}.schema.json) hold the same facts, and tests/test_record_format.py
fails when one of them differs from this module.

| rule             | here                   | the same rule in                                               |
|------------------|------------------------|----------------------------------------------------------------|
| ids              | `ID_PATTERN`, `ID_MAX` | schemas' `$defs.id`; SQL `is_id`; recorder's line key; importers' `safe_id` |
| timestamps       | `is_timestamp`         | schemas' `timestamp` pattern + format; SQL `ts_problem` |
| required fields  | `REQUIRED`             | schemas' `required`; SQL checks in `load_feedback`/`ix_rows`    |
| feedback kinds   | `KINDS`                | schemas' `kind.enum`, one `if/then` per kind; SQL `CASE kind`  |
| message roles    | `ROLES`                | schemas' `role.enum`; SQL `msg_problem`                         |

The timestamp rule is the one docs/records.md states: RFC 3339 with a time-zone offset, e.g.
`2026-11-25T09:15:00Z`: a `T` (or `t`) between date and time, a `Z` (or `z`) or a `+hh:mm`/`-hh:mm` offset with
its colon (hours 00-23), and a date and time that exist. Python's `fromisoformat` and DuckDB's cast both read more (a space
for the `T`, `+0100`, no offset at all); a record that leans on that is refused everywhere alike.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

SCHEMAS = {"interaction": "rlops.interaction/v1", "feedback": "rlops.feedback/v1"}  # the `schema` field's value
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:-]*$"
ID_MAX = 200
ID_RULE = f"letters, digits and . _ : -, up to {ID_MAX}"
# hours 00-23, minutes and seconds 00-59 (DuckDB reads 24:00 and +25:00; no leap seconds: Python and DuckDB refuse
# them); whether the day exists is checked by parsing (is_timestamp, and DuckDB's cast in SQL)
TIMESTAMP_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
                     r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
TIMESTAMP_RULE = "an RFC 3339 date-time with a time-zone offset"
TIMESTAMP_EXAMPLE = "2026-11-03T10:15:00Z"
ACTOR_PATTERN = "^[a-z]+:.+$"
ROLES = ("system", "user", "assistant", "tool")
KINDS = ("rating", "pairwise", "ranking", "edit", "implicit", "outcome", "judge", "comment")
IMPLICIT_ACTIONS = ("regenerate", "copy", "abandon")
REQUIRED = {
    "interaction": ("interaction_id", "timestamp", "agent", "input_messages", "output_messages"),
    "feedback": ("event_id", "interaction_id", "timestamp", "actor", "kind"),
}
ID_FIELDS = {"interaction": "interaction_id", "feedback": "event_id"}  # the field that names a record

_ID = re.compile(ID_PATTERN[:-1] + r"\Z")
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN[:-1] + r"\Z")


def is_id(value: Any) -> bool:
    """Whether `value` is a record id: a string of ID_RULE."""
    return isinstance(value, str) and len(value) <= ID_MAX and _ID.match(value) is not None


def is_timestamp(value: Any) -> bool:
    """Whether `value` is a timestamp by the rule above (form and calendar: no month 13, no 25:00)."""
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return False
    text = re.sub(r"\.([0-9]+)", lambda m: "." + (m.group(1) + "000000")[:6], value.upper()).replace("Z", "+00:00")
    try:  # fractions cut to microseconds: Python 3.10's fromisoformat takes only 3 or 6 digits
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def timestamp_problem(value: Any) -> str | None:
    """Why `value` is not a timestamp (the message every checker gives), or None."""
    if is_timestamp(value):
        return None
    return f"{value!r} is not {TIMESTAMP_RULE}; write e.g. {TIMESTAMP_EXAMPLE}"


def format_checker():
    """A jsonschema FormatChecker whose `date-time` is `is_timestamp` (jsonschema's own needs an extra package and
    otherwise accepts anything)."""
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date-time")(lambda value: not isinstance(value, str) or is_timestamp(value))
    return checker
