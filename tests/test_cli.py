"""The `rlops` command as users run it (a real process): attacks on a spec exit 2, name the place, run nothing."""

from __future__ import annotations

import pytest
from conftest import run

SPEC = "specs/cycles/0001-damaged-orders.yaml"

ATTACKS = {
    "python tag": ("parent: base", 'parent: !!python/object/apply:os.system ["touch MARKER"]', "parent:", "tags are not allowed"),
    "duplicate key": ("policy: support-agent", "policy: support-agent\npolicy: support-agent", "policy:", "duplicate key"),
    "target": ("  method: dpo", "  method: dpo\n  _target_: os.system", "_target_", "reserved"),
    "interpolation": ("beta: 0.1", "beta: '${oc.env:HOME}'", "overrides:", "interpolation"),
    "path escape": ("data/example/feedback.jsonl", "../../etc/passwd", "etc/passwd", "outside the repository"),
    "absolute path": ("data/example/feedback.jsonl", "/etc/passwd", "etc/passwd", "absolute path"),
}


def line_of(text: str, needle: str) -> int:
    """The last line holding `needle` (a duplicate key is reported at its second occurrence)."""
    return max(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_validate_and_plan_refuse_attacks(project, name):
    repo, env = project
    old, new, where, words = ATTACKS[name]
    spec = repo / SPEC
    text = spec.read_text().replace(old, new, 1)
    spec.write_text(text)
    for cmd in (["rlops", "validate", SPEC], ["rlops", "plan", SPEC]):
        p = run(cmd, repo, env, check=False)
        out = p.stdout + p.stderr
        assert p.returncode == 2, out
        assert f"{SPEC}:{line_of(text, where)}:" in out and words in out, out
        assert "Traceback" not in out
    assert not (repo / "MARKER").exists()


def test_billion_laughs_and_non_utf8(project):
    repo, env = project
    bomb = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    bomb += [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    (repo / "specs/cycles/0002-bomb.yaml").write_text("\n".join(bomb) + "\n")
    (repo / "specs/cycles/0003-latin.yaml").write_bytes("cycle: 3\nrationale: g\xe9n\xe9ric\n".encode("latin-1"))
    p = run(["rlops", "validate", "specs/cycles"], repo, env, check=False)
    assert p.returncode == 2
    assert "specs/cycles/0002-bomb.yaml:" in p.stdout and "too many aliases" in p.stdout
    assert "specs/cycles/0003-latin.yaml:2: not valid UTF-8" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_validate_accepts_the_example_and_traceback_is_one_flag_away(project):
    repo, env = project
    assert "ok" in run(["rlops", "validate"], repo, env).stdout
    p = run(["rlops", "plan", "specs/cycles/missing.yaml", "--traceback"], repo, env, check=False)
    assert p.returncode != 0 and "Traceback" in p.stderr
    p = run(["rlops", "plan", "specs/cycles/missing.yaml"], repo, env, check=False)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "missing.yaml" in p.stderr


def test_verdict_exit_codes(project):
    repo, env = project
    gate = repo / "artifacts/gate"
    gate.mkdir(parents=True)
    (gate / "verdict.json").write_text('{"passed": false, "decision": "fail", "gates": '
                                       '[{"passed": false, "metric": "heldout.rubric", "rule": "superior", "reason": "r"}]}')
    p = run(["rlops", "verdict"], repo, env, check=False)
    assert p.returncode == 4 and "FAIL  heldout.rubric" in p.stdout


@pytest.mark.parametrize("stage", ["train", "evaluate", "gate"])
def test_a_stage_without_its_inputs_fails_cleanly_and_writes_nothing(project, stage):
    repo, env = project
    args = ["candidate"] if stage == "evaluate" else []
    p = run(["python", f"pipelines/{stage}.py", *args], repo, env, check=False)
    assert p.returncode == 1 and "missing input: artifacts/" in p.stderr and "dvc repro" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not (repo / "artifacts").exists()
