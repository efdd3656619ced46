"""One error root, one exit-code table. `rlops.cli.main` is the one place that prints errors."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILURE = 1  # an unexpected failure (a bug, or the environment); run with --traceback
EXIT_INVALID = 2  # bad input: a spec, a log file, a command-line argument
EXIT_STALE = 3  # `rlops plan --check`: params.yaml differs from what the spec and conf produce
EXIT_GATE_FAILED = 4  # `rlops verdict`: the candidate did not pass its gates
EXIT_UNSIGNED = 5  # `rlops promote`: the merge is not signed by a pinned signer
EXIT_EVIDENCE = 6  # `rlops promote`: the evidence in the merge does not match dvc.lock, the registry or the ledger
EXIT_STALE_PARENT = 7  # `rlops promote`: the version's parent is no longer what serves production
EXIT_APPROVALS = 8  # `rlops promote`: fewer approvals than specs/policy.yaml requires
EXIT_AUDIT = 9  # `rlops audit verify`: the history does not verify
EXIT_CANARY_WORSE = 10  # `rlops monitor`: the canary in the manifest is significantly worse than production
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILURE: "unexpected failure (re-run with --traceback and report it)",
    EXIT_INVALID: "invalid input: a spec, a log file or an argument; the message names the place and the fix",
    EXIT_STALE: "params.yaml or the DVC outputs are stale: run `rlops plan SPEC` / `dvc repro` and commit the result",
    EXIT_GATE_FAILED: "the candidate did not pass its gates (a normal outcome; see the report)",
    EXIT_UNSIGNED: "promote: the merge commit is not signed by a signer pinned in audit/allowed_signers, or a trust "
                   "root changed outside a recorded trust change",
    EXIT_EVIDENCE: "promote: the evidence in the merge does not match dvc.lock, the registry entry or the ledger, the "
                   "recomputed verdict differs, or the merge changes more than its kind allows",
    EXIT_STALE_PARENT: "promote: stale proposal, its parent no longer serves production; rebase and re-run the cycle",
    EXIT_APPROVALS: "promote: fewer approvals than specs/policy.yaml requires",
    EXIT_AUDIT: "audit verify: the history does not verify; every break is listed",
    EXIT_CANARY_WORSE: "monitor: the canary is significantly worse than production on a monitored metric (see "
                       "artifacts/monitor/monitor.json); `rlops monitor --rollback` proposes taking it out",
    EXIT_INTERRUPTED: "interrupted",
}


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, with its place: `file:line: field.path: message`."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        if not place:
            return f"{self.field}: {self.message}" if self.field else self.message
        return f"{place}: {self.field}: {self.message}" if self.field else f"{place}: {self.message}"


class RlopsError(Exception):
    """The root of every error rlops reports to a user. `hint` says how to fix it."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidInput(RlopsError):
    """Bad input; carries every problem found, not just the first."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem] | str, hint: str | None = None):
        if isinstance(problems, str):
            problems = [Problem("", None, "", problems)]
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field, p.message))
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems), hint)


class StaleParams(RlopsError):
    exit_code = EXIT_STALE


class GateFailed(RlopsError):
    exit_code = EXIT_GATE_FAILED


class Refused(RlopsError):
    """A promotion step refused; carries every reason with the exit code of the first (see EXIT_CODES)."""

    def __init__(self, reasons: list[tuple[int, str]], hint: str | None = None):
        self.reasons = reasons
        self.exit_code = reasons[0][0]
        head = "refused:" if len(reasons) > 1 else "refused: " + reasons[0][1]
        body = "".join(f"\n  - {msg}" for _, msg in reasons) if len(reasons) > 1 else ""
        super().__init__(head + body, hint)


class StageFailed(RlopsError):
    """A pipeline stage could not complete (missing input, training diverged, ...)."""

    exit_code = EXIT_FAILURE
