"""What the trust checks of issue 9 cost `rlops audit verify` per promotion, apart from signature checking.

    .venv/bin/python benchmarks/trust_checks.py [N]    # default 60 promotions

Builds a real history of N promotions (tests/synth_history.py), then times `verify()` in-process, best of 3:
with every check, and with the signature checks (one `ssh-keygen` per merge and per tag here; in-process on branch
sigs) replaced by a constant good answer, which is what is left once they cost well under 1 ms; and, of that, the
share of the verdict recomputation (the gate's bootstrap per gate). Wall and CPU time (this process only: the git
children are in the wall time), since the machine is shared.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from synth_history import make_history  # noqa: E402

from rlops.audit import signatures  # noqa: E402
from rlops.audit import verify as V  # noqa: E402
from rlops.registry import evidence  # noqa: E402


def best(repo: Path, repeat: int = 3) -> tuple[float, float, int]:
    """(best wall time, best CPU time of this process, promotions verified)."""
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = V.verify(repo)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert result is not None and not result.breaks, result.breaks if result else None
    return min(wall), min(cpu), result.promotions


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    with tempfile.TemporaryDirectory(prefix="rlops-trust-bench") as tmp:
        t = time.perf_counter()
        history = make_history(Path(tmp) / "repo", n)
        print(f"built {n} promotions in {time.perf_counter() - t:.0f} s")
        with history.environment():
            full = best(history.path)
            good = signatures.Signature("G", "SHA256:bench", "", "release@rlops.test")
            with mock.patch.object(signatures, "signature", lambda *a: good), \
                    mock.patch.object(signatures, "tag_signature", lambda *a: good), \
                    mock.patch.object(signatures, "problem_with", lambda *a: None):
                rest = best(history.path)
                with mock.patch.object(evidence, "check_verdict", lambda *a: []):
                    no_verdict = best(history.path)
    per = 1000 / full[2]
    for label, (wall, cpu, _) in (("every check", full), ("signature checks stubbed", rest),
                                  ("signatures stubbed, no verdict recomputation", no_verdict)):
        print(f"verify, {label}: wall {wall:.2f} s ({wall * per:.2f} ms/promotion), "
              f"CPU {cpu:.2f} s ({cpu * per:.2f} ms/promotion)")


if __name__ == "__main__":
    main()
