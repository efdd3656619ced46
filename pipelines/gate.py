"""DVC stage `gate` (see dvc.yaml): a thin entry point into rlops.stages."""

import sys
from pathlib import Path

from rlops.stages import main


def note_a_stale_plan() -> int:
    """A plan that is not its spec's (a hand edit of params.yaml) never passes silently: the report says so."""
    from rlops.status import annotate_gate

    annotate_gate(Path.cwd())
    return 0


rc = main("gate")
if rc == 0:
    from rlops.cli import report_errors

    rc = report_errors(note_a_stale_plan, prog="rlops stage gate")
sys.exit(rc)
