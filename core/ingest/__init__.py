"""Ingest: every image file a scanner writes, into the store and the catalog."""
