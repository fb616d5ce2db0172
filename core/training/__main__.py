"""``python -m core.training SPEC.json``: one run (see :mod:`core.training.run`)."""

import sys

from core.training.run import main

sys.exit(main(sys.argv[1:]))
