"""Safe YAML loading for specs: plain data only, and the line of every key and item.

A spec may hold mappings with string keys, sequences, strings, integers, floats, booleans and null. Everything
else is refused with a Problem that names the file and the line, and nothing in the file is ever executed:

- any other tag (`!!python/object/apply:...`, `!!python/name:...`, `!!binary`, `!!set`, `!!timestamp`, `!foo`);
- duplicate keys (plain YAML keeps the last one silently) and keys that are not strings (`1:`, `yes:`, `null:`);
- merge keys (`<<: *defaults`): refused, not supported; write the keys out so a spec reads top to bottom;
- alias expansion beyond MAX_ALIAS_NODES nodes, recursive aliases, nesting deeper than MAX_DEPTH (billion laughs);
- files over MAX_BYTES, bytes that are not UTF-8 and YAML syntax errors.

Dates stay strings (`2026-11-01` is "2026-11-01"): the implicit timestamp resolver is removed on `SpecLoader`
only, never on `yaml.SafeLoader`. PyYAML only composes the node tree here; `_Builder` turns nodes into data,
so no PyYAML constructor (and no tag handler) runs on a spec.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from rlops.errors import InvalidInput, Problem

MAX_BYTES = 1 << 20  # specs are small; a bigger file is a mistake or an attack
MAX_ALIAS_NODES = 10_000  # nodes reached through aliases; the classic billion laughs needs 10^9
MAX_DEPTH = 100  # nesting levels; specs use about 4

_YAML = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_YAML + t for t in ("str", "int", "float", "bool", "null"))
SEQ, MAP, MERGE, TIMESTAMP = (_YAML + t for t in ("seq", "map", "merge", "timestamp"))
SCALAR_TAGS = {STR, INT, FLOAT, BOOL, NULL}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def field_path(path: tuple | list) -> str:
    """("gates", 1, "margin") -> "gates[1].margin"; keys that are not identifiers are quoted: overrides["optim.lr"]."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{json.dumps(str(part))}]"
    return out


def short_name(text: str, keep: int = 80) -> str:
    """A path for a message: one of 5,000 characters is shown by its two ends and its length."""
    return text if len(text) <= keep else f"{text[:keep // 2]}...{text[-keep // 2:]} ({len(text)} characters)"


def relative_name(path: Path, root: Path) -> str:
    """The name messages use: the path relative to root when it is inside, else the path as given."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Loaded:
    """A loaded YAML file: plain `data`, the `file` name for messages, and the line of every key and item."""

    data: Any
    file: str
    lines: dict[tuple, int] = field(default_factory=dict, repr=False)

    def line(self, field_path: tuple | list = ()) -> int | None:
        """1-based line of the key or item at field_path, or of its nearest known ancestor."""
        path = tuple(field_path)
        while path not in self.lines:
            if not path:
                return None
            path = path[:-1]
        return self.lines[path]


class _AliasNode(Node):
    """Where an alias was used: composing keeps the anchored node only; we keep the use's line too."""

    id = "alias"

    def __init__(self, target: Node, start_mark, end_mark):
        super().__init__(None, target, start_mark, end_mark)


class SpecLoader(yaml.SafeLoader):
    """SafeLoader that only composes nodes (see `_Builder`) and leaves dates as strings."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = super().compose_node(parent, index)
            return _AliasNode(target, event.start_mark, event.end_mark)
        return super().compose_node(parent, index)


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Stop(Exception):
    """Building cannot go on (alias bomb, recursion, nesting); carries the one Problem that says why."""

    def __init__(self, problem: Problem):
        self.problem = problem


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML):] if tag.startswith(_YAML) else tag


class _Builder:
    """Turns a composed node tree into plain data, recording lines and collecting every problem it meets."""

    def __init__(self, file: str, loader: SpecLoader):
        self.file = file
        self.loader = loader
        self.lines: dict[tuple, int] = {}
        self.problems: list[Problem] = []
        self.alias_nodes = 0
        self.active: set[int] = set()  # nodes being built right now: meeting one again is a recursive alias

    def problem(self, node: Node, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.file, node.start_mark.line + 1, field_path(path), message))

    def stop(self, node: Node, path: tuple, message: str) -> _Stop:
        return _Stop(Problem(self.file, node.start_mark.line + 1, field_path(path), message))

    def build(self, node: Node, path: tuple = (), depth: int = 0, alias: tuple | None = None) -> Any:
        """`alias` is (node, path) of the outermost alias being expanded, so a bomb is reported where it is used."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, _AliasNode):
            alias = alias or (node, path)
            node = node.value
        if alias:
            self.alias_nodes += 1
            if self.alias_nodes > MAX_ALIAS_NODES:
                raise self.stop(*alias, f"too many aliases (possible billion-laughs): expanding them visits "
                                        f"more than {MAX_ALIAS_NODES} nodes; write the values out instead")
        if depth > MAX_DEPTH:
            raise self.stop(node, path, f"nested more than {MAX_DEPTH} levels deep")
        if id(node) in self.active:
            raise self.stop(*(alias or (node, path)), "recursive alias: a value contains itself; write it out instead")
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, path, depth, alias)
            return self.mapping(node, path, depth, alias)
        finally:
            self.active.discard(id(node))

    def check_tag(self, node: Node, path: tuple, allowed: set[str]) -> bool:
        if node.tag in allowed:
            return True
        self.problem(node, path, f"tag {_show_tag(node.tag)!s} is not allowed: tags are not allowed in specs "
                                 "(a spec declares values; it never builds objects or runs code)")
        return False

    def scalar(self, node: ScalarNode, path: tuple) -> Any:
        if not self.check_tag(node, path, SCALAR_TAGS):
            return None
        try:
            if node.tag == INT:
                return self.loader.construct_yaml_int(node)
            if node.tag == FLOAT:
                return self.loader.construct_yaml_float(node)
            if node.tag == BOOL:
                return self.loader.construct_yaml_bool(node)
            if node.tag == NULL:
                return None
        except (ValueError, KeyError):  # `!!int abc`, `!!bool maybe`
            self.problem(node, path, f"{node.value!r} is not a valid {_show_tag(node.tag)}")
            return None
        return node.value

    def sequence(self, node: SequenceNode, path: tuple, depth: int, alias: tuple | None) -> list:
        if not self.check_tag(node, path, {SEQ}):
            return []
        return [self.build(item, path + (i,), depth + 1, alias) for i, item in enumerate(node.value)]

    def mapping(self, node: MappingNode, path: tuple, depth: int, alias: tuple | None) -> dict:
        if not self.check_tag(node, path, {MAP}):
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, _AliasNode):
                key_node = key_node.value
            if key_node.tag == MERGE:
                self.problem(key_node, path + ("<<",), "merge keys ('<<') are not supported; write the keys out")
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, "keys must be plain strings, not lists or mappings")
                continue
            if key_node.tag != STR:
                if self.check_tag(key_node, path, SCALAR_TAGS):
                    self.problem(key_node, path, f"key {key_node.value!r} reads as {_show_tag(key_node.tag)[2:]}; "
                                                 f"keys must be strings: quote it ('{key_node.value}')")
                continue
            key = key_node.value
            key_path = path + (key,)
            line = key_node.start_mark.line + 1
            if key in out:
                first = self.lines.get(key_path)
                self.problems.append(Problem(self.file, line, field_path(key_path),
                                             f"duplicate key {key!r} (first at line {first}); keep one"))
                self.build(value_node, key_path, depth + 1, alias)  # still report problems inside it
                continue
            self.lines.setdefault(key_path, line)
            out[key] = self.build(value_node, key_path, depth + 1, alias)
        return out


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise InvalidInput([Problem(file, line, "", f"not valid UTF-8 at byte {e.start}; save the file as UTF-8")]) from None


def _syntax_problem(e: yaml.YAMLError, text: str, file: str) -> Problem:
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, e.position) + 1
        char = e.character if isinstance(e.character, str) else chr(e.character)
        return Problem(file, line, "", f"character {ord(char):#06x} is not allowed in YAML; remove it")
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        detail = "; ".join(str(part) for part in (e.context, e.problem) if part)
        return Problem(file, mark.line + 1 if mark else None, "", f"YAML syntax error: {detail}")
    return Problem(file, None, "", f"YAML syntax error: {e}")


def load_yaml(path: Path, root: Path) -> Loaded:
    """Load one YAML file as plain data with lines; raise InvalidInput listing every problem when it cannot."""
    path = Path(path)
    file = relative_name(path, root)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput([Problem(file, None, "", "no such file")]) from None
    except OSError as e:
        too_long = " (each name in a path may have at most 255 bytes)" if len(file) > 255 else ""
        raise InvalidInput([Problem(short_name(file), None, "", f"cannot read: {e.strerror or e}{too_long}")]) from None
    if len(raw) > MAX_BYTES:
        raise InvalidInput([Problem(file, None, "", f"file is larger than {MAX_BYTES // 1024} KiB, the limit for "
                                                    "a spec; keep data in files the spec points to")])
    text = _decode(raw, file)
    loader = None
    try:
        loader = SpecLoader(text)
        node = loader.get_single_node()
    except yaml.YAMLError as e:
        raise InvalidInput([_syntax_problem(e, text, file)]) from None
    except RecursionError:
        raise InvalidInput([Problem(file, None, "", "nested too deeply to read")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:  # an empty file, or comments only
        return Loaded(None, file, {})
    builder = _Builder(file, loader)
    try:
        data = builder.build(node)
    except _Stop as stop:
        raise InvalidInput(builder.problems + [stop.problem]) from None
    if builder.problems:
        raise InvalidInput(builder.problems)
    return Loaded(data, file, builder.lines)
