"""Light commands stay light: `rlops --help`, `validate`, `plan`, promotion and audit import no heavy library
(fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "lm_eval", "dvc", "peft", "datasets")
PROBE = """
import json, sys
from rlops.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
print(json.dumps({"rc": rc, "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


@pytest.mark.parametrize("args, rc", [
    (["--help"], 0),
    (["validate", "specs"], 0),
    (["plan", "specs/cycles/0001-damaged-orders.yaml", "model=tiny"], 0),
    (["plan", "--check"], 0),
    (["verdict", "missing.json"], 1),
    (["promote"], 0),  # nothing to promote on a plain commit
    (["audit", "verify"], 0),
    (["audit", "report", "--out", "audit-report"], 0),
    (["rollback"], 2),  # nothing to roll back to
    (["propose", "--no-push"], 3),  # no verdict yet
    (["history"], 0),
    (["history", "--json"], 0),
    (["serve", "--help"], 0),
    (["deploy", "render", "--out", "deploy-out"], 0),
])
def test_light_commands_import_nothing_heavy(project, args, rc):
    repo, env = project
    p = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=repo, env=env, text=True, capture_output=True)
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], (args, result, p.stderr)
    assert result["rc"] == rc, p.stderr
