"""Plain row access for the inventory tables (one place for their SQL)."""

from __future__ import annotations

from typing import Any

from core.catalog.db import Catalog, WriteTransaction

INVENTORY_TABLES = (
    "threat_families",
    "threat_classes",
    "threat_items",
    "luggage_types",
    "bags",
    "scanner_models",
    "scanners",
    "poses",
)


def _check_table(table: str) -> None:
    if table not in INVENTORY_TABLES:
        raise ValueError(f"not an inventory table: {table}")


def all_rows(catalog: Catalog, table: str) -> list[dict[str, Any]]:
    _check_table(table)
    return [dict(r) for r in catalog.query(f"SELECT * FROM {table} ORDER BY id")]


def rows_in_txn(txn: WriteTransaction, table: str) -> list[dict[str, Any]]:
    _check_table(table)
    cursor = txn.execute(f"SELECT * FROM {table} ORDER BY id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def insert_row(txn: WriteTransaction, table: str, row: dict[str, Any]) -> int:
    _check_table(table)
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cursor = txn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))
    return int(cursor.lastrowid)


def update_row(txn: WriteTransaction, table: str, row_id: int, changes: dict[str, Any]) -> None:
    _check_table(table)
    assignments = ", ".join(f"{column} = ?" for column in changes)
    txn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), row_id))


def counts(catalog: Catalog) -> dict[str, int]:
    return {
        table: catalog.query_one(f"SELECT COUNT(*) AS n FROM {table}")["n"]
        for table in INVENTORY_TABLES
    }
