"""Frozen entry point of the trainer bundle: ``xlab-trainer SPEC.json`` runs one run, and
``xlab-trainer --probe`` answers the GPU probe (what ``python -m core.training`` and
``python -m core.training.probe`` do in a source install)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # The data loader's worker processes start this same executable.
    multiprocessing.freeze_support()
    if sys.argv[1:] == ["--probe"]:
        import json

        from core.training.probe import probe

        print(json.dumps(probe()), flush=True)
        sys.exit(0)
    from core.training.run import main

    sys.exit(main(sys.argv[1:]))
