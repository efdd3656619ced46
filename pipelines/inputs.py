"""DVC stage `inputs@<stream>-<n>` (see dvc.yaml): record one log path's files, so each path is a dependency."""

import sys
from pathlib import Path

from rlops.cli import report_errors


def call() -> int:
    import yaml

    from rlops.extract.inputs import record

    params = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))
    record(params, Path.cwd(), [a for a in sys.argv[1:] if a != "--traceback"][0])
    return 0


sys.exit(report_errors(call, prog="rlops stage inputs", traceback="--traceback" in sys.argv))
