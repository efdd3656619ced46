"""The packages' layering: `rlops.promotion` -> `rlops.audit` -> `rlops.registry`, never back.

The registry (versions, manifests, tags, the evidence a version carries) is the data both others read; the audit
(ledger, signatures, trust, the checks of one merge, verify, report) reads it; promotion (propose, promote, rollback,
trust propose) writes both. An import the other way round (at module level or inside a function) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["rlops.promotion", "rlops.audit", "rlops.registry"]  # each may import only the ones after it


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, wherever it is written."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def layer_of(module: str) -> int | None:
    return next((i for i, p in enumerate(LAYERS) if module == p or module.startswith(p + ".")), None)


def violations(files: list[Path], root: Path = ROOT) -> list[str]:
    found = []
    for path in files:
        mine = layer_of(".".join(path.relative_to(root).with_suffix("").parts))
        if mine is None:
            continue
        for line, target in imported_modules(path, root):
            theirs = layer_of(target)
            if theirs is not None and theirs < mine:
                found.append(f"{path.relative_to(root)}:{line}: imports {target} ({LAYERS[theirs]} builds on "
                             f"{LAYERS[mine]}, not the other way round)")
    return found


def test_packages_import_in_one_direction():
    files = sorted((ROOT / "rlops").rglob("*.py"))
    assert violations(files) == []


@pytest.mark.parametrize("package, line", [("registry", "from rlops.audit import ledger"),
                                           ("registry", "    from rlops.promotion.promote import promote"),
                                           ("audit", "from rlops.promotion import propose")])
def test_an_import_against_the_layering_is_named(tmp_path, package, line):
    """The check itself sees an import back up, also one inside a function."""
    fake = tmp_path / "rlops" / package / "_layering_probe.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(f"def f():\n{line}\n" if line.startswith(" ") else f"{line}\n", encoding="utf-8")
    found = violations([fake], tmp_path)
    assert len(found) == 1 and found[0].startswith(f"rlops/{package}/_layering_probe.py:")


def test_no_two_modules_share_a_file_name():
    """Distinct names for distinct things: a second `report.py` or `run.py` is a name a reader has to qualify."""
    seen: dict[str, list[str]] = {}
    for path in sorted((ROOT / "rlops").rglob("*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in seen.items() if len(paths) > 1 and name not in ("__init__.py", "cli.py")}
    assert shared == {}
