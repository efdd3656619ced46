"""The CI templates in .github/workflows/ are valid GitHub workflows and run only commands that exist.

Validity: check-jsonschema's vendored copy of SchemaStore's workflow schema (offline: the schema ships in the
package, and the subprocess gets a dead proxy so any download attempt fails), plus its schema that requires a
timeout on every job. Commands: every `rlops ...` a `run:` script calls is parsed by `rlops.cli.build_parser()`.
Scripts: each is valid bash, and the steps that need no forge (spec check, re-plan, SSH signing key, OpenPGP
trust) run as the runner runs them, on real git repositories, real `rlops plan`, real ssh-keygen and gpg keys.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import env_for, run

from rlops.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
SCHEMAS = ["vendor.github-workflows", "custom.github-workflows-require-timeout"]
# words that may precede a command in a shell script
SHELL_KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"}


def offline_env(tmp_path: Path) -> dict[str, str]:
    """A dead proxy (port 9, nothing listens) and an empty cache: a download attempt fails instead of succeeding."""
    dead = "http://127.0.0.1:9"
    return {"PATH": str(CHECK_JSONSCHEMA.parent), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
            "NO_PROXY": "", "no_proxy": ""}


def check_jsonschema(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    assert CHECK_JSONSCHEMA.exists(), f"{CHECK_JSONSCHEMA} is missing: install the dev extra (pip install -e '.[dev]')"
    return subprocess.run([str(CHECK_JSONSCHEMA), "--color", "never", *args], env=offline_env(tmp_path),
                          capture_output=True, text=True, timeout=120)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    """`on:`; PyYAML reads YAML 1.1, where the bare key `on` is the boolean true."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else {k: None for k in on} if isinstance(on, list) else on


def run_scripts(path: Path):
    """(job id, step name, script) for every `run:` step."""
    for job_id, job in load(path)["jobs"].items():
        for i, step in enumerate(job.get("steps", [])):
            if "run" in step:
                yield job_id, step.get("name", f"step {i + 1}"), step["run"]


def rlops_calls(script: str) -> list[list[str]]:
    """The argument lists of every command in `script` whose command word is `rlops`.

    Quoted text is one word (so `echo "rlops promote refused"` is not a call); a word holding `$` is a value known
    only at run time and becomes a placeholder.
    """
    lines = [line for line in script.replace("\\\n", " ").splitlines() if not line.lstrip().startswith("#")]
    lex = shlex.shlex(" ;\n".join(lines), posix=True, punctuation_chars=True)
    lex.whitespace_split, lex.commenters = True, ""
    calls: list[list[str]] = []
    current: list[str] | None = None
    at_start = True
    for tok in lex:
        punct = all(c in "();<>|&" for c in tok)
        if punct and (all(c in "();|&" for c in tok) or tok.endswith("(")):  # ; && || | ( ) <( : a new command
            current, at_start = None, True
        elif punct:  # a redirection: what follows is a file, not an argument
            if current and current[-1].isdigit():
                current.pop()
            current = None
        elif at_start:
            if tok in SHELL_KEYWORDS or re.fullmatch(r"[A-Za-z_]\w*=.*", tok):
                continue
            at_start = False
            if tok == "rlops":
                current = []
                calls.append(current)
        elif current is not None:
            current.append("PLACEHOLDER" if "$" in tok else tok)
    return calls


def all_rlops_calls() -> list[tuple[str, list[str]]]:
    return [(f"{path.name}: {job}: {step!r}", call)
            for path in WORKFLOWS for job, step, script in run_scripts(path) for call in rlops_calls(script)]


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"cycle-pr.yml", "promote.yml", "audit.yml", "cadence.yml"}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_workflow_is_valid(tmp_path, schema):
    p = check_jsonschema(["--builtin-schema", schema, *map(str, WORKFLOWS)], tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "validation done" in p.stdout


VENDORED = ROOT / "tests" / "data" / "schemas" / "github-workflow.json"  # SchemaStore's, pinned (README beside it)


class Yaml12Loader(yaml.SafeLoader):
    """YAML as GitHub reads a workflow (1.2 core): only true/false are booleans, so the key `on` stays `on`."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def vendored_problems(text: str) -> list[str]:
    import json

    import jsonschema

    schema = json.loads(VENDORED.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    def messages(errors):  # a oneOf/anyOf error holds why each branch failed in its context
        for e in errors:
            yield f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300]
            yield from messages(e.context or [])

    return list(messages(validator.iter_errors(yaml.load(text, Loader=Yaml12Loader))))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_is_valid_against_the_pinned_schemastore_schema(path):
    """The same check with `jsonschema` against a pinned copy of SchemaStore's published schema (the source commit is
    in tests/data/schemas/README.md), so a newer check-jsonschema cannot change what passes here unnoticed."""
    assert vendored_problems(path.read_text(encoding="utf-8")) == []


def test_the_pinned_schema_rejects_a_broken_workflow():
    text = (ROOT / ".github/workflows/cadence.yml").read_text(encoding="utf-8")
    assert "    runs-on: ubuntu-latest\n" in text
    assert any("'runs-on' is a required property" in p
               for p in vendored_problems(text.replace("    runs-on: ubuntu-latest\n", "", 1)))
    assert any("'repository-dispatch' was unexpected" in p
               for p in vendored_problems(text.replace("  repository_dispatch:", "  repository-dispatch:", 1)))


# (file, text in it, replacement, schema, what the error must say): each is a mistake the check must catch
BROKEN = {
    "runs-on missing": ("cycle-pr.yml", "    runs-on: ubuntu-latest\n", "", SCHEMAS[0], "'runs-on' is a required property"),
    "unknown job key": ("promote.yml", "    timeout-minutes: 30\n", "    timeout-minutes: 30\n    run-on: ubuntu-latest\n",
                        SCHEMAS[0], "'run-on' was unexpected"),
    "bad permission": ("audit.yml", "      contents: read\n", "      contents: readwrite\n", SCHEMAS[0],
                       "'readwrite' is not one of ['read', 'write', 'none']"),
    "trigger typo": ("cycle-pr.yml", "  pull_request:\n", "  pull-request:\n", SCHEMAS[0], "('pull-request' was unexpected)"),
    "timeout missing": ("audit.yml", "    timeout-minutes: 15\n", "", SCHEMAS[1], "'timeout-minutes' is a required property"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_workflow_is_rejected(tmp_path, name):
    file, old, new, schema, message = BROKEN[name]
    text = (ROOT / ".github" / "workflows" / file).read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{file} no longer holds {old!r}: update this test's mutation"
    broken = tmp_path / file
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    p = check_jsonschema(["--verbose", "--builtin-schema", schema, str(broken)], tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert message in p.stdout + p.stderr, p.stdout + p.stderr


def test_the_check_cannot_reach_the_network(tmp_path):
    """The guard works: a schema that must be downloaded fails under it, so the passes above used no network."""
    wf = WORKFLOWS[0]
    p = check_jsonschema(["--schemafile", "https://json.schemastore.org/github-workflow.json", str(wf)], tmp_path)
    assert p.returncode != 0, p.stdout + p.stderr
    assert "Connection refused" in p.stdout + p.stderr, p.stdout + p.stderr


def test_the_call_finder_reads_shell():
    script = 'echo "rlops promote is not called here"\nif ! rlops plan --check; then exit 3; fi\n' \
             'X=1 rlops verdict 2>&1 | tee log\n# rlops comment\nrlops promote \\\n  --approvals "$F"\nid=$(rlops audit verify)'
    assert rlops_calls(script) == [["plan", "--check"], ["verdict"], ["promote", "--approvals", "PLACEHOLDER"],
                                   ["audit", "verify"]]


def test_every_rlops_command_in_the_workflows_exists():
    calls = all_rlops_calls()
    used = {call[0] for _, call in calls if call}
    # the call finder found the commands the workflows exist to run (guards against it silently finding nothing)
    assert used >= {"validate", "plan", "verdict", "promote", "audit", "cycle", "propose"}, used
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    missing = sorted(used - set(sub.choices))
    assert not missing, f"the workflows run `rlops` commands the parser lacks: {', '.join(missing)}"
    bad = []
    for where, call in calls:
        err = io.StringIO()
        # a run-time value given to a number option (`--min-events "$N"`) stands for a number here
        call = [("0" if word == "PLACEHOLDER" and i and call[i - 1] == "--min-events" else word)
                for i, word in enumerate(call)]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                build_parser().parse_args(call)
            except SystemExit as e:
                if e.code:
                    bad.append(f"{where}: rlops {shlex.join(call)}: {err.getvalue().strip().splitlines()[-1]}")
    assert not bad, "\n".join(bad)


def test_make_targets_exist():
    targets = set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), re.M))
    for path in WORKFLOWS:
        for job, step, script in run_scripts(path):
            for target in re.findall(r"^\s*make\s+([\w.-]+)", script, re.M):
                assert target in targets, f"{path.name}: {job}: {step!r}: no `make {target}` in the Makefile"


def test_run_scripts_hold_no_expressions():
    """`${{ ... }}` pasted into a script is a script injection (a branch name can hold shell); pass values in env."""
    for path in WORKFLOWS:
        for job, step, script in run_scripts(path):
            assert "${{" not in script, f"{path.name}: {job}: {step!r}: move the expression into `env:`"


def test_permissions_are_minimal():
    for path in WORKFLOWS:
        wf = load(path)
        assert wf.get("permissions") == {}, f"{path.name}: set `permissions: {{}}` at the top; jobs ask for their own"
        for job_id, job in wf["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{path.name}: {job_id}: declare the job's permissions"
            writes = {k for k, v in perms.items() if v == "write"}
            # promote pushes the ledger commit; cadence's GPU job pushes the cycle branch and opens its pull request
            allowed = {"promote.yml": {"contents"}, "cadence.yml": {"contents", "pull-requests"}}.get(
                path.name, {"pull-requests"})
            assert writes <= allowed, f"{path.name}: {job_id}: writes {sorted(writes - allowed)}"


def test_triggers():
    pr = triggers(load(ROOT / ".github/workflows/cycle-pr.yml"))
    assert "specs/cycles/**" in pr["pull_request"]["paths"]
    assert "push" in triggers(load(ROOT / ".github/workflows/promote.yml"))
    assert "schedule" in triggers(load(ROOT / ".github/workflows/audit.yml"))
    cadence = triggers(load(ROOT / ".github/workflows/cadence.yml"))
    assert {"schedule", "repository_dispatch"} <= set(cadence)


def test_cadence_runs_cycle_new_then_repro_on_the_gpu_then_propose():
    wf = load(ROOT / ".github/workflows/cadence.yml")
    first, gpu = wf["jobs"]["new-cycle"], wf["jobs"]["reproduce"]
    assert first["runs-on"] == "ubuntu-latest" and "gpu" in gpu["runs-on"] and gpu["needs"] == "new-cycle"
    assert gpu["if"] == "needs.new-cycle.outputs.spec != ''"  # no new spec: the GPU runner is never woken
    scripts = [step.get("run", "") for step in gpu["steps"]]
    order = [next(i for i, s in enumerate(scripts) if needle in s)
             for needle in ("rlops plan", "dvc repro", "rlops verdict", "rlops propose")]
    assert order == sorted(order)
    assert any(call[:2] == ["cycle", "new"] for _, _, script in run_scripts(ROOT / ".github/workflows/cadence.yml")
               for call in rlops_calls(script))


def test_promote_installs_the_dvc_of_the_train_extra():
    """promote.yml installs dvc alone (the train extra would pull torch); its range must not drift from pyproject."""
    pins = re.findall(r'"(dvc\s*[<>=!~][^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert len(pins) == 1, pins
    dvc = pins[0]
    assert f'"{dvc}"' in (ROOT / ".github/workflows/promote.yml").read_text(), dvc


# The steps' shell scripts, run as the runner runs them (bash -eo pipefail), on real git repositories and keys.

def step_script(file: str, name: str) -> str:
    for _, step, script in run_scripts(ROOT / ".github" / "workflows" / file):
        if step == name:
            return script
    raise AssertionError(f"{file} has no step named {name!r}")


def run_step(script: str, cwd: Path, env: dict[str, str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    env = {**env, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(runner_temp / "output"), **extra}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def outputs(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "runner-temp" / "output"
    return dict(line.split("=", 1) for line in path.read_text().splitlines()) if path.exists() else {}


def git_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    env = env_for(home)
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "dev@rlops.test"], ["config", "user.name", "dev"]):
        run(["git", *args], repo, env)
    return repo, env


def commit(repo: Path, env: dict[str, str], files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", message], repo, env)


def test_every_run_script_is_valid_bash():
    for path in WORKFLOWS:
        for job, step, script in run_scripts(path):
            p = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
            assert p.returncode == 0, f"{path.name}: {job}: {step!r}: {p.stderr}"


def test_the_spec_check_catches_a_plan_from_another_spec(tmp_path):
    """The pull request's merge commit adds cycle 2 while params.yaml still names cycle 1: refused, naming both."""
    repo, env = git_repo(tmp_path)
    script = step_script("cycle-pr.yml", "Check that params.yaml was planned from this pull request's spec")
    plan = "plan:\n  spec: specs/cycles/{}\n  overrides: []\n"
    commit(repo, env, {"specs/cycles/0001-a.yaml": "cycle: 1\n", "params.yaml": plan.format("0001-a.yaml")}, "cycle 1")
    run(["git", "checkout", "-q", "-b", "pr"], repo, env)
    commit(repo, env, {"specs/cycles/0002-b.yaml": "cycle: 2\n"}, "cycle 2, not planned")
    run(["git", "checkout", "-q", "main"], repo, env)
    run(["git", "merge", "-q", "--no-ff", "-m", "merge pr", "pr"], repo, env)  # what refs/pull/N/merge holds
    p = run_step(script, repo, env, tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "::error file=params.yaml::params.yaml was planned from specs/cycles/0001-a.yaml" in p.stdout, p.stdout
    assert "specs/cycles/0002-b.yaml" in p.stdout

    run(["git", "reset", "-q", "--hard", "HEAD~1"], repo, env)
    run(["git", "checkout", "-q", "pr"], repo, env)
    commit(repo, env, {"params.yaml": plan.format("0002-b.yaml")}, "plan cycle 2")
    run(["git", "checkout", "-q", "main"], repo, env)
    run(["git", "merge", "-q", "--no-ff", "-m", "merge pr", "pr"], repo, env)
    p = run_step(script, repo, env, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "params.yaml is planned from specs/cycles/0002-b.yaml" in p.stdout


def test_the_replan_step_keeps_the_recorded_overrides(project, tmp_path):
    repo, env = project
    spec = "specs/cycles/0001-damaged-orders.yaml"
    run(["rlops", "plan", spec, "model=tiny"], repo, env)
    p = run_step(step_script("cycle-pr.yml", "Re-plan for this runner"), repo, env, tmp_path,
                 RLOPS_PLAN_OVERRIDES="runtime=cuda")
    assert p.returncode == 0, p.stdout + p.stderr
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["plan"] == {"spec": spec, "overrides": ["model=tiny", "runtime=cuda"]}
    assert params["runtime"]["device"] == "cuda"


def test_the_signing_step_makes_git_sign(tmp_path):
    repo, env = git_repo(tmp_path)
    script = step_script("promote.yml", "Configure the signing key")
    p = run_step(script, repo, env, tmp_path, RLOPS_SIGNING_KEY="")
    assert p.returncode == 1 and "::error::no RLOPS_SIGNING_KEY" in p.stdout, p.stdout + p.stderr  # promote needs it
    assert run(["git", "config", "user.signingkey"], repo, env, check=False).returncode == 1

    key = tmp_path / "ci-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci@rlops.test", "-f", str(key)], check=True)
    # a secret pasted into GitHub's form often loses its final newline, which ssh-keygen needs
    p = run_step(script, repo, env, tmp_path, RLOPS_SIGNING_KEY=key.read_text().rstrip("\n"))
    assert p.returncode == 0, p.stdout + p.stderr
    written = Path(run(["git", "config", "user.signingkey"], repo, env).stdout.strip())
    assert written.parent == tmp_path / "runner-temp" and written.stat().st_mode & 0o077 == 0
    commit(repo, env, {"audit/ledger.jsonl": "{}\n"}, "a ledger commit")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"ci@rlops.test {key.with_suffix('.pub').read_text()}")
    status = run(["git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "log", "-1", "--format=%G?"], repo, env)
    assert status.stdout.strip() == "G"


@pytest.fixture
def gnupg_homes():
    """Two short GnuPG homes (an agent's socket path must stay short); their agents are stopped afterwards."""
    homes = [Path(tempfile.mkdtemp(prefix="rlg")) for _ in range(2)]
    yield homes
    for h in homes:
        subprocess.run(["gpgconf", "--homedir", str(h), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(h, ignore_errors=True)


def test_the_gpg_step_trusts_exactly_the_pinned_keys(tmp_path, gnupg_homes):
    """A fresh runner calls a web-flow signature E (no key); after the step, G for a pinned key, U for another."""
    signer_home, runner_home = gnupg_homes
    repo, env = git_repo(tmp_path)
    for name in ("web-flow", "other"):
        subprocess.run(["gpg", "--homedir", str(signer_home), "--batch", "--passphrase", "", "--quick-gen-key",
                        f"{name} <{name}@rlops.test>", "ed25519", "sign", "1d"], check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--homedir", str(signer_home), "--list-keys", "--with-colons"],
                             check=True, capture_output=True, text=True).stdout
    prints = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
    assert len(prints) == 2
    keys = tmp_path / "keys.asc"
    keys.write_bytes(subprocess.run(["gpg", "--homedir", str(signer_home), "--armor", "--export"],
                                    check=True, capture_output=True).stdout)
    pinned = prints[0]
    spaced = " ".join(pinned[i:i + 4] for i in range(0, 40, 4)).lower()  # as people paste it
    commit(repo, env, {"audit/trusted_gpg_keys": f"# GitHub web-flow\n{spaced}\n"}, "pin the web-flow key")
    signed, runner_env = {}, {**env, "GNUPGHOME": str(runner_home)}
    for fp in prints:
        run(["git", "-c", f"user.signingkey={fp}", "commit", "-q", "--allow-empty", f"-S{fp}", "-m", f"signed by {fp}"],
            repo, {**env, "GNUPGHOME": str(signer_home)})
        signed[fp] = run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()

    def status(fp: str) -> str:
        return run(["git", "log", "-1", "--format=%G?", signed[fp]], repo, runner_env).stdout.strip()

    assert status(pinned) == "E"
    trust = step_script("promote.yml", "Trust the pinned OpenPGP keys")
    p = run_step(trust, repo, runner_env, tmp_path, GPG_KEYS_URL=keys.as_uri())
    assert p.returncode == 0, p.stdout + p.stderr
    assert status(pinned) == "G" and status(prints[1]) == "U"
    assert step_script("audit.yml", "Trust the pinned OpenPGP keys") == trust  # audit.yml runs the same step


def test_a_push_that_promotes_nothing_pushes_nothing(project, tmp_path):
    """An ordinary commit on main: promote says so and exits 0, leaves no `promoted` output (the push and DVC steps
    are skipped), and the audit trail still verifies."""
    repo, env = project
    commit(repo, env, {"notes.md": "an ordinary change\n"}, "an ordinary change")
    head = run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()
    p = run_step(step_script("promote.yml", "Promote"), repo, env, tmp_path, GITHUB_SHA=head, APPROVALS="")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "nothing to promote" in p.stdout
    assert "promoted" not in outputs(tmp_path)
    assert run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip() == head
    p = run_step(step_script("promote.yml", "Verify the audit trail"), repo, env, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s.get("name"): s for s in load(ROOT / ".github/workflows/promote.yml")["jobs"]["promote"]["steps"]}
    for name in ("Push the ledger commit and the tags", "Install DVC"):
        assert steps[name]["if"] == "steps.promote.outputs.promoted == 'yes'", name
