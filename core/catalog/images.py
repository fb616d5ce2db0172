"""Image rows: the catalog side of ingest (the content store holds the files)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core.catalog.db import WriteTransaction

IMAGE_COLUMNS = (
    "sha256", "store_path", "original_name", "scanner_id", "captured_at", "ingested_at", "split",
    "item_id", "bag_id", "pose_id", "width", "height", "bit_depth", "channels", "quality_flags", "usable",
)


def insert_images(txn: WriteTransaction, rows: Iterable[tuple]) -> int:
    """Insert image rows (fields in IMAGE_COLUMNS order); tallies follow by trigger."""
    cursor = txn.executemany(
        f"INSERT INTO images ({', '.join(IMAGE_COLUMNS)}) VALUES ({', '.join('?' for _ in IMAGE_COLUMNS)})",
        rows,
    )
    return cursor.rowcount


_EDITABLE = {"split", "item_id", "bag_id", "pose_id", "scanner_id", "usable", "quality_flags"}


def update_image(txn: WriteTransaction, image_id: int, changes: dict[str, Any]) -> None:
    """Change an image's assignment or usability, with an audit entry."""
    unknown = set(changes) - _EDITABLE
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    cursor = txn.execute(f"SELECT {', '.join(changes)} FROM images WHERE id = ?", (image_id,))
    before = cursor.fetchone()
    if before is None:
        raise KeyError(image_id)
    assignments = ", ".join(f"{c} = ?" for c in changes)
    txn.execute(f"UPDATE images SET {assignments} WHERE id = ?", (*changes.values(), image_id))
    txn.audit("update", "images", image_id, dict(zip(changes, before)), changes)


def delete_image_row(txn: WriteTransaction, image_id: int) -> None:
    txn.execute("DELETE FROM images WHERE id = ?", (image_id,))
    txn.audit("delete", "images", image_id)
