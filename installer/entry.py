"""Frozen entry point: the same `xlab` command line, window included."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Ingest decodes in spawned processes; in a frozen bundle they start this
    # same executable, which must hand them to multiprocessing, not to the CLI.
    multiprocessing.freeze_support()
    from app.launcher import main

    sys.exit(main())
