"""The test suite's own rules: tests marked by name in conftest.py exist, whole `dvc repro` runs are marked slow,
and no test asserts on wall-clock time (a loaded machine makes such a test fail for nothing)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import TRAIN_TESTS

TESTS = Path(__file__).resolve().parent


def functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_test_conftest_marks_by_name_exists():
    missing = [f"{file}::{name}" for file, names in TRAIN_TESTS.items() for name in names
               if name not in functions(TESTS / file)]
    assert missing == [], "renamed or removed: update TRAIN_TESTS in tests/conftest.py"


def test_a_test_that_runs_the_whole_pipeline_is_marked_slow():
    unmarked = []
    for path in sorted(TESTS.glob("test_*.py")):
        for name, fn in functions(path).items():
            source = ast.get_source_segment(path.read_text(encoding="utf-8"), fn) or ""
            whole = re.search(r'\["dvc", "repro"\]', source)  # `dvc repro` with no stage named: trains and evaluates
            marked = any("slow" in ast.unparse(d) for d in fn.decorator_list)
            if whole and not marked:
                unmarked.append(f"{path.name}::{name}")
    assert unmarked == []


def test_no_test_asserts_on_wall_clock_time():
    clock = re.compile(r"\btime\.(perf_counter|monotonic|time)\(")
    found = [f"{path.name}:{n}" for path in sorted(TESTS.glob("*.py")) if path.name != Path(__file__).name
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if clock.search(line)]
    assert found == []
