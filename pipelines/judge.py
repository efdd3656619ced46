"""DVC stage `judge` (see dvc.yaml): a thin entry point into rlops.stages."""

import sys

from rlops.stages import main

sys.exit(main("judge"))
