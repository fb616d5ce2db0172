"""The training process: one training or evaluation run of a torchvision detector, in its own
process (``python -m core.training SPEC.json``; :mod:`core.training.run`).

It reads images from files named by manifests and writes events, checkpoints, the final model and
its detections into the run's folder; it never opens the catalog (an import-linter contract keeps
it so). The parent side (records, queue, results) is :mod:`core.runs`.

Torch is an optional extra: this package and its pure modules (``params``, ``manifest``,
``events``, ``spec``, ``models``' ``MODELS``, ``probe``'s estimate) import without it; only the
modules the run process loads (``run``, ``data``) and :func:`core.training.models.build` need it.
"""
