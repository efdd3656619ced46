"""The `rlops` command: parses arguments, calls one function of the package, maps errors to exit codes.

Light on purpose: `rlops --help`, `validate` and `plan` import none of torch, transformers, trl, lm_eval, dvc.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from rlops import __version__, layout
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
    import yaml

    from rlops.spec.checks import sample_size_warnings

    for line in sample_size_warnings(yaml.safe_load(out.read_text(encoding="utf-8")), root):
        print(f"rlops plan: warning: {line}", file=sys.stderr)
    return EXIT_OK


def cmd_verdict(args) -> int:
    import json

    path = Path(args.root) / args.path
    if not path.is_file():
        raise RlopsError(f"{path} not found", hint="run `dvc repro` to produce the verdict")
    verdict = json.loads(path.read_text(encoding="utf-8"))
    for g in verdict["gates"]:
        print(f"{'pass' if g['passed'] else 'FAIL'}  {g['metric']} ({g['rule']}): {g['reason']}")
    stale = _verdict_staleness(Path(args.root).resolve())
    print(f"verdict: {verdict['decision'].upper()}" + (" (STALE)" if stale else ""))
    if stale:
        print("stale: this verdict does not describe the current spec and outputs:")
        for why in stale:
            print(f"  - {why}")
    return EXIT_OK if verdict["passed"] else EXIT_GATE_FAILED


def _verdict_staleness(root: Path) -> list[str]:
    from rlops import status

    plan = status.plan_state(root)
    return status.verdict_state(root, plan, status.dvc_state(root)).stale


def cmd_status(args) -> int:
    from rlops.status import describe

    for line in describe(Path(args.root).resolve()):
        print(line)
    return EXIT_OK


def cmd_import(args) -> int:
    from rlops.observe.importers.cli import nothing_imported, options_from, print_summary
    from rlops.observe.importers.driver import import_logs

    out = Path(args.out) if args.out else Path(args.root) / "data" / "imported" / args.format
    summary = import_logs(args.format, Path(args.path), out, options_from(args))
    print_summary(summary, args.path)
    empty = nothing_imported(summary, args.path)
    if empty:
        print(empty[0], file=sys.stderr)
        return EXIT_INVALID if empty[1] else EXIT_OK
    return EXIT_OK


def _print_next(proposal) -> None:
    if proposal.next_steps:
        print("not pushed (no `gh` logged in, no remote, or --no-push); to open the pull request, run:")
        for step in proposal.next_steps:
            print(f"  {step}")
    else:
        print("pushed and opened the pull request")


def _print_branch(proposal) -> None:
    """The command leaves the user on the proposal's branch: say so, and how to get back."""
    back = f"git checkout {proposal.base}" if getattr(proposal, "base", "") else "git checkout -"
    print(f"you are now on branch {proposal.branch}; to go back: {back}")


def cmd_propose(args) -> int:
    from rlops.promotion.propose import propose

    root = Path(args.root).resolve()
    p = propose(root, remote=args.remote, push=not args.no_push)
    print(f"rlops propose: {p.title}")
    print(f"  branch {p.branch}, commit {p.commit[:12]}; pull request body: {p.body_file}")
    _print_next(p)
    _print_branch(p)
    return EXIT_OK


def _nothing_to_promote(commit: str | None) -> str:
    if commit:
        return (f"rlops promote: nothing to promote: {commit} does not merge a proposal (a branch made by "
                "`rlops propose` or `rlops rollback`)")
    return "rlops promote: nothing to promote: every merged proposal on this branch is recorded already"


def cmd_promote(args) -> int:
    from rlops.promotion.promote import promote, promote_pending

    root = Path(args.root).resolve()
    approvals = Path(args.approvals) if args.approvals else None
    if args.commit:
        one = promote(root, args.commit, approvals)
        done = [one] if one else []
    else:
        done = promote_pending(root, approvals)
    if not done:
        print(_nothing_to_promote(args.commit))
        return EXIT_OK
    for d in done:
        print(f"rlops promote: {d.version} -> {d.stage} (merge {d.merge[:12]}); ledger commit {d.record_commit[:12]}")
        print(f"  tags: {', '.join(d.tags)}")
    print(f"  publish: git push --atomic {args.remote} HEAD {' '.join(t for d in done for t in d.tags)}")
    return EXIT_OK


def cmd_rollback(args) -> int:
    from rlops.promotion.rollback import rollback

    root = Path(args.root).resolve()
    p = rollback(root, args.to, args.reason, remote=args.remote, push=not args.no_push)
    print(f"rlops rollback: {p.title}")
    print(f"  branch {p.branch}, commit {p.commit[:12]}; pull request body: {p.body_file}")
    _print_next(p)
    _print_branch(p)
    return EXIT_OK


def cmd_trust_propose(args) -> int:
    from rlops.promotion.trustroots import propose_trust

    p = propose_trust(Path(args.root).resolve(), args.reason, remote=args.remote, push=not args.no_push)
    print(f"rlops trust propose: {p.title}")
    print(f"  branch {p.branch}, commit {p.commit[:12]}; pull request body: {p.body_file}")
    _print_next(p)
    return EXIT_OK


def cmd_audit_genesis(args) -> int:
    from rlops.audit.genesis import genesis
    from rlops.promotion.propose import actor

    root = Path(args.root).resolve()
    event, commit = genesis(root, actor=actor(root))
    print(f"rlops audit genesis: {event.event['policy']}'s trust roots and manifest recorded as ledger line {event.seq}; "
          f"commit {commit[:12]}")
    return EXIT_OK


def cmd_audit_verify(args) -> int:
    from rlops.audit.verify import verify
    from rlops.errors import EXIT_AUDIT

    result = verify(Path(args.root).resolve(), args.ref)
    for b in result.breaks:
        print(b)
    if result.breaks:
        print(f"rlops audit verify: {len(result.breaks)} break(s) in the history of {result.policy}", file=sys.stderr)
        return EXIT_AUDIT
    print(f"rlops audit verify: ok: {len(result.events)} ledger events, {result.promotions} promotion(s) verified; "
          f"{result.policy} production is {result.production}")
    return EXIT_OK


def cmd_audit_report(args) -> int:
    from rlops.audit.report import write_report

    root = Path(args.root).resolve()
    out = write_report(root, root / args.out, args.ref, args.deployed, args.format)
    for path in out:
        print(f"rlops audit report: wrote {path}")
    return EXIT_OK


def cmd_history(args) -> int:
    import json

    from rlops.history import history, table, to_json

    cycles = history(Path(args.root).resolve(), args.ref)
    if args.json:
        print(json.dumps(to_json(cycles), indent=2))
    elif cycles:
        print(table(cycles))
    else:
        print("rlops history: no cycles yet (add a spec under specs/cycles/, then `rlops plan` it)")
    return EXIT_OK


def cmd_monitor(args) -> int:
    from rlops import monitor
    from rlops.errors import EXIT_CANARY_WORSE

    root = Path(args.root).resolve()
    interactions, feedback = args.interactions, args.feedback
    if not interactions:
        interactions, spec_feedback = monitor.default_sources(root)
        feedback = feedback or spec_feedback
    doc = monitor.collect(root, monitor.Options(interactions, feedback or [], args.bucket, args.min_users))
    out = monitor.write(root, doc, args.out)
    for v in doc["versions"]:
        lat = v["latency_ms"]["p50"]
        print(f"{v['version']:<10} {v['stage']:<10} {v['interactions']:>7} interactions, {v['users']} users; feedback "
              f"{v['feedback_rate']:.1%}, rating {'-' if v['rating'] is None else format(v['rating'], '.3f')}, edits "
              f"{v['edit_rate']:.1%}, refusals {v['refusal_rate']:.1%} (over {v['over_refusal_rate']:.1%}), tool "
              f"errors {v['tool_error_rate']:.1%}, latency p50 {'-' if lat is None else f'{lat:g} ms'}")
    for c in doc["canaries"]:
        print(f"canary {c['version']} against {', '.join(c['against']) or 'no production traffic'} "
              f"({c['from']} to {c['to']}): {'SIGNIFICANTLY WORSE' if c['worse'] else 'not significantly worse'}")
        for m in c["metrics"]:
            if m["worse"]:
                print(f"  {m['metric']}: canary {m['canary']}, production {m['production']}: {m['reason']}")
    print(f"rlops monitor: wrote {out.relative_to(root) if out.is_relative_to(root) else out}"
          + (f" ({doc['skipped_records']} record(s) without id, time or version skipped)" if doc["skipped_records"] else ""))
    alarm = monitor.alarm(root, doc)
    if not alarm:
        return EXIT_OK
    if args.rollback:
        from rlops.promotion.rollback import end_canary

        p = end_canary(root, alarm[0], "rlops monitor: the canary is significantly worse than production ("
                       + ", ".join(m["metric"] for c in doc["canaries"] if c["version"] == alarm[0]
                                   for m in c["metrics"] if m["worse"]) + f"); see {layout.MONITOR}",
                       remote=args.remote, push=not args.no_push)
        print(f"rlops monitor: opened the rollback: {p.title}")
        print(f"  branch {p.branch}, commit {p.commit[:12]}; pull request body: {p.body_file}")
        _print_next(p)
        _print_branch(p)
    else:
        print(f"rlops monitor: canary {alarm[0]} is significantly worse than production; "
              "`rlops monitor --rollback` proposes taking it out", file=sys.stderr)
    return EXIT_CANARY_WORSE


def add_monitor(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("monitor", parents=[common], help="post-market monitoring: each version in production, canary "
                                                         "against production; exit 10 when the canary is worse",
                       description="Read the production logs (default: the newest cycle spec's feedback paths) and "
                                   f"write {layout.MONITOR} (a DVC metric): per version and stage, in total and per "
                                   "day or week, the feedback rate, rating, edit rate, refusal and over-refusal rates "
                                   "(the evaluation's refusal grader), tool error rate and latency; then each canary "
                                   "against production over the same days, users resampled independently (a "
                                   "two-sample bootstrap at the gate's confidence). Exit 10 when the manifest's canary "
                                   "is significantly worse; --rollback then opens the proposal that takes it out.")
    p.add_argument("--interactions", action="append", default=[], metavar="PATH",
                   help="interaction logs: a file or folder (e.g. a Recorder's DIR/interactions); repeatable")
    p.add_argument("--feedback", action="append", default=[], metavar="PATH",
                   help="feedback logs: a file or folder (e.g. DIR/feedback); repeatable")
    p.add_argument("--bucket", choices=["day", "week"], default="day", help="the time bucket (default: day)")
    p.add_argument("--min-users", type=int, default=20, metavar="N",
                   help="test a metric only with at least N users with a value in each arm (default: 20)")
    p.add_argument("--out", default=layout.MONITOR, help=f"where to write (default: {layout.MONITOR})")
    p.add_argument("--rollback", action="store_true",
                   help="when the manifest's canary is significantly worse, open the proposal that takes it out")
    pushing(p)
    p.set_defaults(func=cmd_monitor)


def cmd_cycle_new(args) -> int:
    import datetime as dt

    from rlops.cadence import new_cycle

    to = None
    if args.to:
        try:
            to = dt.date.fromisoformat(args.to)
        except ValueError:
            from rlops.errors import InvalidInput, Problem

            raise InvalidInput([Problem("command line", None, "--to", f"{args.to!r} is not a date YYYY-MM-DD")]) from None
    result = new_cycle(Path(args.root).resolve(), to=to, min_events=args.min_events)
    print(f"rlops cycle new: {result.message}")
    return EXIT_OK


def add_cycle(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("cycle", help="start the next cycle: `rlops cycle new` writes its spec",
                       description="`rlops cycle new`: write the next cycle spec from the last one.")
    csub = p.add_subparsers(dest="cycle_command", metavar="SUBCOMMAND", required=True)
    p = csub.add_parser("new", parents=[common], help="write the next cycle spec when enough new feedback has arrived",
                        description="Write specs/cycles/NNNN-feedback-FROM-to-TO.yaml: the last cycle's number + 1, "
                                    "parent: production, the feedback window from the day after the last one's end "
                                    "to today (or --to), the same data paths and settings, and a rationale that says "
                                    "what is new and that a reviewer must rewrite it. Does nothing (exit 0) when "
                                    "fewer than --min-events feedback events fell in the window. Validated before it "
                                    "is written; never overwrites a file.")
    p.add_argument("--to", metavar="YYYY-MM-DD", help="the window's last day (default: today, UTC)")
    p.add_argument("--min-events", type=int, default=1, metavar="N",
                   help="write nothing unless at least N new feedback events arrived (default: 1)")
    p.set_defaults(func=cmd_cycle_new)


def add_history(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("history", parents=[common], help="every cycle, promoted or not: verdict, key metrics, parent, version",
                       description="List every cycle of the repository: its spec, the version it trained from, the "
                                   "version its proposal registers, its status (planned, evaluated, proposed, merged, "
                                   "promoted), its verdict and the key metrics of its gates. Read from git (the specs, "
                                   "the cycle branches, the registry entries, the deployment manifests), the ledger "
                                   "(audit/ledger.jsonl) and this working tree's last verdict.")
    p.add_argument("ref", nargs="?", default="HEAD", help="the commit to read the history at (default: HEAD)")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per cycle, for machines")
    p.set_defaults(func=cmd_history)


def pushing(p: argparse.ArgumentParser) -> None:
    """The options of the commands that open a pull request."""
    p.add_argument("--remote", default="origin", help="the remote to push to (default: origin)")
    p.add_argument("--no-push", action="store_true", help="only commit on the branch; print the push and PR commands")


def _all_components(kind: str):
    from rlops import components

    return components.all_of(kind)


def _fill_epilog_on_help(parser: argparse.ArgumentParser, marker: str, text) -> None:
    """Replace `marker` in the parser's epilog by `text()` only when its help is printed, so that building the
    parser (every command does) loads nothing the help alone needs."""
    format_help = parser.format_help

    def filled() -> str:
        parser.epilog = parser.epilog.replace(marker, text())
        return format_help()

    parser.format_help = filled


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
                       description="Print the gate verdict of the last `dvc repro` and exit 0 if the candidate passed, "
                                   "4 if not. Says STALE, and why, when params.yaml no longer matches its spec and the "
                                   "conf or `dvc repro` would re-run a stage.")
    p.add_argument("path", nargs="?", default=layout.VERDICT, help=f"default: {layout.VERDICT}")
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser("status", parents=[common], help="the current cycle: is the plan, are DVC's outputs, is the verdict current",
                       description="Show the cycle params.yaml plans, whether params.yaml is stale against its spec "
                                   "and pipelines/conf (values, not formatting), which stages `dvc repro` would re-run "
                                   "(asked of DVC in a subprocess), and the verdict and whether it is current. Exit 0.")
    p.set_defaults(func=cmd_status)

    from rlops.observe.importers import names as formats  # imports no format module: keeps every command light

    p = sub.add_parser("import", parents=[common], help="convert other tools' logs or preference datasets into rlops records",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Convert another tool's logs, or a public preference dataset, into rlops v1 "
                                   "interactions and feedback. Writes interactions.jsonl, feedback.jsonl, "
                                   "quarantine.jsonl (malformed records with file, line and reason) and "
                                   "import-report.json (counts, unmapped fields) into --out, replacing it as a whole. "
                                   "Importing the same input twice gives identical files.",
                       epilog="formats:\n{formats}")  # filled in when the help is shown: it loads the formats
    _fill_epilog_on_help(p, "{formats}", lambda: "\n".join(f"  {c.name:<15} {c.description}"
                                                           for c in _all_components("importer")))
    p.add_argument("format", metavar="FORMAT", help="one of: " + ", ".join(formats()))
    p.add_argument("path", metavar="PATH", help="an export file, or a folder of .json/.jsonl files")
    p.add_argument("--out", metavar="DIR", help="output folder (default: data/imported/FORMAT/ under --root)")
    p.add_argument("--policy", metavar="NAME", help="agent name for every record (default: the source's, else FORMAT)")
    p.add_argument("--agent-version", metavar="VERSION",
                   help="agent version for every record (default: the source's, else 'imported')")
    p.add_argument("--timestamp", metavar="TIME",
                   help="time for records without one, RFC 3339 (default: 1970-01-01T00:00:00Z)")
    p.add_argument("--scale", metavar="NAME=LO,HI", action="append", default=[],
                   help="rating scale of a score name or feedback key (repeatable), e.g. helpfulness=1,5")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("propose", parents=[common], help="put a passing cycle on a branch and open its pull request",
                       description="After a passing gate: register the candidate as the next version, move the "
                                   "deployment manifest per the spec's promotion mode, append the pending events to the "
                                   "ledger and commit the evidence on a branch named for the cycle. Pushes and opens "
                                   "the pull request with `gh` when it is logged in; otherwise prints what to run. "
                                   "Refuses when the gate failed, outputs are stale or unrelated changes are present.")
    pushing(p)
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("promote", parents=[common], help="after a signed merge: verify it, record the promotion, tag it",
                       description="Run on the default branch after a merge (in CI). Refuses unless the merge commit "
                                   "is signed by a signer pinned in audit/allowed_signers (exit 5), the evidence matches "
                                   "dvc.lock, the registry and the ledger (exit 6), the version's parent still served "
                                   "production (exit 7) and the required approvals are recorded (exit 8). Then appends "
                                   "to the ledger in a commit and writes GTO tags (policy@vN.0.0, policy#prod#N).")
    p.add_argument("commit", nargs="?", help="one merge commit on the checked-out branch's first-parent history (default: "
                                              "every merge since the last recorded promotion, oldest first)")
    p.add_argument("--approvals", metavar="FILE",
                   help='JSON from the forge: {"approvals": [{"login": ..., "state": "APPROVED"}]} or GitHub\'s reviews list')
    p.add_argument("--remote", default="origin", help="named in the push command it prints (default: origin)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", parents=[common], help="propose putting an earlier version back in production",
                       description="Open a revert proposal: the manifest points back, a rolled_back event is appended, "
                                   "and the same signed-merge promotion path applies.")
    p.add_argument("--to", metavar="VERSION", help="the version to put back (default: the one production served before)")
    p.add_argument("--reason", default="", help="why, for the ledger and the pull request")
    pushing(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("trust", help="change pinned signers, people or the approvals rule through their own merge",
                       description="`rlops trust propose --reason ...`: after editing audit/allowed_signers, "
                                   "audit/trusted_gpg_keys, audit/people.yaml or specs/policy.yaml's approvals, put "
                                   "exactly those edits and a trust_changed ledger event on a branch. Its merge must be "
                                   "signed and approved under the roots before the change; `rlops promote` records it.")
    tsub = p.add_subparsers(dest="trust_command", metavar="SUBCOMMAND", required=True)
    p = tsub.add_parser("propose", parents=[common], help="open the pull request that changes the trust roots")
    p.add_argument("--reason", required=True, help="why the trust roots change (recorded in the ledger)")
    pushing(p)
    p.set_defaults(func=cmd_trust_propose)

    audit = sub.add_parser("audit", help="verify the history offline, or render it for an auditor",
                           description="The audit trail: `rlops audit verify`, `rlops audit report`.")
    asub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)
    p = asub.add_parser("verify", parents=[common], help="re-check the ledger, signatures, evidence and lineage; exit 9 on a break",
                        description="Re-check offline: the ledger's hash chain; every promotion's signature and pinned "
                                    "signer along the first-parent history; every digest against the git objects and "
                                    "dvc.lock at that commit; the lineage from the base model to production; that the "
                                    "manifest names the last promoted version. Lists every break with its commit and line.")
    p.add_argument("ref", nargs="?", default="HEAD", help="the commit to verify up to (default: HEAD)")
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser("genesis", parents=[common], help="record the trust roots and manifest the history starts from",
                        description="Append a genesis event to audit/ledger.jsonl (the digests of the pinned signers, "
                                    "people, the approvals rule and the manifest) and commit it with them. Allowed "
                                    "until the first promotion; after that, use `rlops trust propose`.")
    p.set_defaults(func=cmd_audit_genesis)
    p = asub.add_parser("report", parents=[common], help="render the history of the policy as Markdown, JSON and HTML",
                        description="One section per version: rationale, data, training, metrics with confidence "
                                    "intervals, red-team results, verdict, approvers, signer, dates; and whether the "
                                    "deployed digest matches the last promoted version.")
    p.add_argument("ref", nargs="?", default="HEAD", help="the commit to report up to (default: HEAD)")
    p.add_argument("--out", default="audit/report", help="output folder (default: audit/report)")
    p.add_argument("--deployed", metavar="MD5", help="the model digest serving production now, to detect drift")
    p.add_argument("--format", choices=["all", "md", "json", "html"], default="all", help="what to write (default: all)")
    p.set_defaults(func=cmd_audit_report)
    add_history(sub, common)
    from rlops.serve.cli import add_commands as add_serving  # stdlib only: keeps --help light

    add_serving(sub, common)
    add_monitor(sub, common)
    add_cycle(sub, common)
    from rlops.simulate import add_command as add_simulate  # stdlib only

    add_simulate(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    prog = f"rlops {args.command}" + (f" {args.audit_command}" if getattr(args, "audit_command", None) else "") + (
        f" {args.trust_command}" if getattr(args, "trust_command", None) else "") + (
        f" {args.deploy_command}" if getattr(args, "deploy_command", None) else "") + (
        f" {args.cycle_command}" if getattr(args, "cycle_command", None) else "")
    return report_errors(lambda: args.func(args), prog=prog, traceback=args.traceback)


if __name__ == "__main__":
    sys.exit(main())
