"""Time `rlops audit verify` on synthetic histories of 250, 500 and 1,000 promotions; it must grow linearly.

    .venv/bin/python benchmarks/audit_verify.py                  # build (once, cached) and measure
    .venv/bin/python benchmarks/audit_verify.py --compare        # also time signatures checked by git (before)
    .venv/bin/python benchmarks/audit_verify.py --profile 1000   # cProfile of verify() on one history

The history (tests/synth_history.py) is real: every promotion is a proposal commit made with rlops's registry
code, a `git merge --no-ff -S` signed with an SSH key pinned in audit/allowed_signers, and the real `promote()`
(a ledger commit and two signed GTO tags). One history of 1,000 promotions is built once (about 15 min on 2 busy cores) and cached under
$RLOPS_BENCH_CACHE (default /tmp/rlops-bench-audit), per synth_history.FORMAT; the 250- and 500-promotion
histories are `git clone --single-branch` of its prefixes (tags follow the commits), so all three are clones,
packed alike, as an auditor would verify them. Each is verified in a fresh `rlops` process, best of 3.

`--compare` times each history both ways in the same run, alternating: with every signature checked by git
(`RLOPS_SIGNATURES=git`: one `git log --format=%G?` and its `ssh-keygen` per merge, as before in-process checking)
and as shipped (SSH signatures verified in-process, rlops/audit/signatures.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from synth_history import FORMAT, env_for, init  # noqa: E402

from rlops.audit.signatures import ENV_SWITCH  # noqa: E402

SIZES = (250, 500, 1000)
CACHE = Path(os.environ.get("RLOPS_BENCH_CACHE", "/tmp/rlops-bench-audit"))
# the code that decides what a history looks like; a cache built by other code is used (it must still verify), with
# a note, since rebuilding takes minutes: --rebuild builds anew
SHAPERS = ["rlops/audit/ledger.py", "rlops/audit/signatures.py",
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rlops/registry").glob("*.py"))]


def code_hash() -> str:
    h = hashlib.sha256()
    for rel in SHAPERS:
        h.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


def source(n: int, key: str) -> Path:
    """The cached history of `n` promotions, with a branch `at-K` at the ledger commit of promotion K."""
    path = CACHE / f"src-{n}-{key}"
    done = path / ".complete"
    if done.is_file():
        built = json.loads(done.read_text())
        if built["code"] != code_hash():
            print(f"note: the cached history was built by other code ({built['code']}, rlops commit "
                  f"{built['commit']}); --rebuild builds it with this code", file=sys.stderr)
        return path / "repo"
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    repo = init(path / "repo")
    for k in range(1, n + 1):
        repo.cycle_once()
        if k in SIZES:
            repo.git("branch", f"at-{k}")
        if k % 50 == 0:
            print(f"  built {k}/{n} promotions ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    repo.git("gc", "-q", "--prune=now")  # about 1 GB of loose objects otherwise
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    done.write_text(json.dumps({"promotions": n, "seconds": round(time.perf_counter() - t), "code": code_hash(),
                                "commit": commit}) + "\n")
    return path / "repo"


def clone(src: Path, k: int, key: str, env: dict[str, str]) -> Path:
    """A clone of the first `k` promotions: main at the ledger commit of promotion k, with the tags in that history."""
    dst = CACHE / f"h{k}-{key}"
    if (dst / ".git").is_dir() and (dst / ".git/rlops-bench-complete").is_file():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", "--single-branch", "--branch", f"at-{k}", f"file://{src}", str(dst)],
                   env=env, check=True)
    subprocess.run(["git", "branch", "-q", "-m", f"at-{k}", "main"], cwd=dst, env=env, check=True)
    (dst / ".git/rlops-bench-complete").write_text("")
    return dst


def verify_once(repo: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds of one `rlops audit verify` in a fresh process, and its last line."""
    t = time.perf_counter()
    p = subprocess.run([str(Path(sys.executable).parent / "rlops"), "audit", "verify"], cwd=repo, env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"rlops audit verify failed ({p.returncode}) in {repo}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return dt, p.stdout.strip().splitlines()[-1]


def verify_seconds(repo: Path, envs: dict[str, dict[str, str]], runs: int = 3) -> dict[str, tuple[float, str]]:
    """Best of `runs` for each environment, the runs alternating between them (so both see the same machine load)."""
    best = {name: (float("inf"), "") for name in envs}
    for _ in range(runs):
        for name, env in envs.items():
            dt, line = verify_once(repo, env)
            best[name] = (min(best[name][0], dt), line)
    return best


def profile(repo: Path, env: dict[str, str]) -> None:
    import cProfile
    import pstats

    from rlops.audit.verify import verify

    os.environ.update(env)
    prof = cProfile.Profile()
    prof.enable()
    verify(repo)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", type=int, choices=SIZES, help="profile verify() on this history instead of timing")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per history; the best counts (default 3)")
    ap.add_argument("--rebuild", action="store_true", help="build the histories anew (minutes)")
    ap.add_argument("--compare", action="store_true",
                    help=f"also time each history with every signature checked by git ({ENV_SWITCH}=git), alternating")
    args = ap.parse_args()
    key = f"format{FORMAT}"
    if args.rebuild:
        for old in CACHE.glob(f"*-{key}"):
            shutil.rmtree(old)
    CACHE.mkdir(parents=True, exist_ok=True)
    src = source(max(SIZES), key)
    env = env_for(src.parent / "repo.home")
    repos = {k: clone(src, k, key, env) for k in SIZES}
    if args.profile:
        profile(repos[args.profile], env)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}")
    envs = {"after": env}
    if args.compare:
        envs = {"before": {**env, ENV_SWITCH: "git"}, "after": env}
    times: dict[int, float] = {}
    before = f" signatures by git, best of {args.runs} (s) | per promotion (ms) |" if args.compare else ""
    print(f"| promotions | ledger events |{before} verify, best of {args.runs} (s) | per promotion (ms) |")
    print("|---:|---:|" + ("---:|---:|" if args.compare else "") + "---:|---:|")
    for k in SIZES:
        best = verify_seconds(repos[k], envs, args.runs)
        times[k], line = best["after"]
        events = line.split("ok: ", 1)[1].split(" ledger events")[0] if "ok: " in line else "?"
        cells = [f"{best[name][0]:.2f} | {1000 * best[name][0] / k:.1f}" for name in envs]
        print(f"| {k} | {events} | {' | '.join(cells)} |", flush=True)
    print(f"\nt(500)/t(250) = {times[500] / times[250]:.2f}; t(1000)/t(500) = {times[1000] / times[500]:.2f} "
          f"(linear growth: about 2.0); t(1000)/t(250) = {times[1000] / times[250]:.2f} (linear: about 4.0)")


if __name__ == "__main__":
    main()
