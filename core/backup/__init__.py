"""Backup, restore and verify of a lab.

A backup folder holds the catalog as of one commit (SQLite's online backup
API: taken while ingest and the window write), the store files that catalog
refers to, the lab's quarantine, runs and simulator folders, a manifest of
every file's SHA-256 (``manifest.tsv``) and ``backup.json`` (when, which lab,
counts, schema, the audit chain's head). Backing up into the same folder again
copies only what changed. :mod:`core.backup.restore` makes a new lab from it,
checking every file against the manifest; :mod:`core.backup.verify` checks a
lab: the catalog file, the audit chain, every stored file against its hash,
and no file in the store that the catalog does not know.
"""
