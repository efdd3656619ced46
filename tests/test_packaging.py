"""pyproject.toml declares its license the PEP 639 way (no setuptools deprecation warnings), and only the core
dependencies rlops imports."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_with_its_files_and_a_setuptools_that_reads_them():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"  # a table ({text = ...}) is deprecated since setuptools 77
    assert project["license-files"] and all(list(ROOT.glob(p)) for p in project["license-files"])
    assert "Apache License" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # PEP 639 forbids both
    floor = next(r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools"))
    version = re.search(r">=\s*(\d+)", floor)
    assert version and int(version.group(1)) >= 77, floor  # the first setuptools that reads an SPDX license


# a distribution's import name where it differs from its own
IMPORT_NAMES = {"pyyaml": "yaml", "hydra-core": "hydra"}


def test_every_core_dependency_is_imported_by_rlops():
    """The light core declares only what rlops uses (gitpython was declared and never imported: the git code runs
    `git` itself, see rlops/gitio.py), so a light install pulls in nothing dead."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "rlops").rglob("*.py"))
    for requirement in PYPROJECT["project"]["dependencies"]:
        dist = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        module = IMPORT_NAMES.get(dist, dist.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {re.escape(module)}\b", sources, re.M), \
            f"pyproject.toml declares {dist}, but no module of rlops imports {module}"
