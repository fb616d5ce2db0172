"""Frozen dataset versions: test sets, train sets as k:1 clones of the test mix,
their label distribution, diffs and lineage."""
