"""The `rlops` command: parses arguments, calls one function of the package, maps errors to exit codes.

Light on purpose: `rlops --help`, `validate` and `plan` import none of torch, transformers, trl, lm_eval, dvc.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from rlops import __version__
from rlops.errors import EXIT_CODES, EXIT_FAILURE, EXIT_GATE_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, RlopsError


def report_errors(call: Callable[[], int], prog: str, traceback: bool = False) -> int:
    """The one place that turns exceptions into a message and an exit code."""
    try:
        return call()
    except RlopsError as e:
        if traceback:
            raise
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug or the environment: say so briefly, the traceback is one flag away
        if traceback:
            raise
        print(f"{prog}: unexpected error: {type(e).__name__}: {e}", file=sys.stderr)
        print("  hint: re-run with --traceback to see where it happened, and report it", file=sys.stderr)
        return EXIT_FAILURE


def cmd_validate(args) -> int:
    from rlops.spec.validate import validate_paths

    root = Path(args.root).resolve()
    paths = [Path(p) for p in args.paths] or [root / "specs"]
    problems = validate_paths(paths, root)
    for p in problems:
        print(p)
    if problems:
        print(f"rlops validate: {len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_INVALID
    print(f"rlops validate: ok ({', '.join(str(p) for p in args.paths) or 'specs/'})")
    return EXIT_OK


def cmd_plan(args) -> int:
    from rlops.spec import compose

    root = Path(args.root).resolve()
    if args.check:
        compose.check(root, Path(args.spec) if args.spec else None, args.overrides if args.spec else None)
        print("rlops plan: params.yaml is up to date")
        return EXIT_OK
    if not args.spec:
        raise RlopsError("a cycle spec is required", hint="rlops plan specs/cycles/0001-damaged-orders.yaml [model=tiny]")
    out = compose.write(root, Path(args.spec), args.overrides)
    print(f"rlops plan: wrote {out.relative_to(root)} from {args.spec}" + (f" with {' '.join(args.overrides)}" if args.overrides else ""))
    return EXIT_OK


def cmd_verdict(args) -> int:
    import json

    path = Path(args.root) / args.path
    if not path.is_file():
        raise RlopsError(f"{path} not found", hint="run `dvc repro` to produce the verdict")
    verdict = json.loads(path.read_text(encoding="utf-8"))
    for g in verdict["gates"]:
        print(f"{'pass' if g['passed'] else 'FAIL'}  {g['metric']} ({g['rule']}): {g['reason']}")
    print(f"verdict: {verdict['decision'].upper()}")
    return EXIT_OK if verdict["passed"] else EXIT_GATE_FAILED


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="rlops",
        description="Improve a deployed LLM agent from its production feedback, one reviewed cycle at a time.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rlops {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--traceback", action="store_true", help="show the Python traceback of an error")
    common.add_argument("--root", default=".", help="the repository root (default: the current directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", parents=[common], help="check specs and log files against their schemas; report every problem",
                       description="Check specs (YAML) and logs (JSONL) against rlops's schemas and rules. "
                                   "Reports every problem as file:line: field: message and exits 2 if any.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: specs/)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", parents=[common], help="compose a cycle spec with pipelines/conf into params.yaml",
                       description="Compose a cycle spec with the Hydra config groups in pipelines/conf/ and write the "
                                   "fully resolved params.yaml that `dvc repro` reads. Overrides such as `model=tiny` or "
                                   "`train.max_steps=10` win over the spec.")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="a cycle spec, e.g. specs/cycles/0001-damaged-orders.yaml")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra-style overrides: group=option or key.path=value")
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 3 if params.yaml differs from what would be written now "
                        "(without SPEC: re-plan with the spec and overrides recorded in params.yaml)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("verdict", parents=[common], help="print the gate verdict; exit 0 on pass, 4 on fail",
                       description="Print the gate verdict of the last `dvc repro` and exit 0 if the candidate passed, 4 if not.")
    p.add_argument("path", nargs="?", default="artifacts/gate/verdict.json", help="default: artifacts/gate/verdict.json")
    p.set_defaults(func=cmd_verdict)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    return report_errors(lambda: args.func(args), prog=f"rlops {args.command}", traceback=args.traceback)


if __name__ == "__main__":
    sys.exit(main())
