"""How an audit entry's hash is made: the storage format of the chained audit log.

Each entry stores ``prev_hash`` (the hash of the entry before it, ``""`` for
the first) and ``hash = sha256(prev_hash + canonical JSON of its fields)``.
The fields are the entry's columns as stored (``before_json`` and
``after_json`` as their text), its id included, so an entry changed, removed,
moved or added afterwards no longer fits the chain. Migration 0010 filled the
hashes of the entries written before it with this same function: changing it
breaks every existing chain, so it never changes.

No imports from the rest of the catalog: the writer (``db``), the migration and
the verifier (``core.audit.chain``) all use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# The columns an entry's hash covers, in the order the canonical form lists them.
HASHED_FIELDS = ("id", "at", "actor", "action", "entity", "entity_key", "before_json", "after_json")


def canonical(entry: Mapping[str, Any]) -> str:
    """The entry's hashed fields as one JSON text (compact, key order fixed)."""
    return json.dumps([entry[f] for f in HASHED_FIELDS], ensure_ascii=False, separators=(",", ":"))


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The hash an entry following ``prev_hash`` must carry (hex SHA-256)."""
    return hashlib.sha256((prev_hash + canonical(entry)).encode("utf-8")).hexdigest()
