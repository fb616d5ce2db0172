"""Is the audit log as XLab wrote it? Recompute its hash chain.

Each entry carries the hash of the one before it and its own hash over its
fields (core.catalog.audit_chain). An entry changed in the file no longer
matches its hash; an entry removed leaves the next one pointing at a hash
that is not its predecessor's; an entry added by hand has no hash, or one
that does not fit. What the chain cannot see alone is the newest entries cut
off the end: each backup records the head it saw as an *anchor* (a lab
setting, and the backup's backup.json), and the check also asks that the
anchored entry is still there, unchanged.

Someone who can write the file and knows this code can rebuild a whole chain;
an anchor kept outside the lab (the backup, a printed head) is what shows that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from core.catalog import Catalog, WriteTransaction
from core.catalog import audit_store as store
from core.catalog import dashboard_store
from core.catalog.audit_chain import entry_hash
from core.catalog.db import utc_now
from core.progress import Progress

ANCHOR_SETTING = "audit_anchor"
BATCH = 5000
MAX_BREAKS = 100  # a log rewritten from some point on breaks once per entry: the first ones say enough


@dataclass(frozen=True)
class Anchor:
    """An entry the chain must still hold as it was (the head when a backup was made)."""

    entry_id: int
    hash: str
    at: str = ""
    source: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"id": self.entry_id, "hash": self.hash, "at": self.at, "source": self.source}


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    problem: str


@dataclass
class ChainReport:
    entries: int = 0
    head_id: int = 0
    head_hash: str | None = None
    breaks: list[ChainBreak] = field(default_factory=list)
    more_breaks: int = 0  # found beyond MAX_BREAKS
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        if self.ok:
            anchored = (f"; it still holds entry {self.anchor.entry_id} as it was at {self.anchor.source}"
                        if self.anchor else "")
            return (f"audit log intact: {self.entries:,} entries, chain head {self.head_id} "
                    f"({(self.head_hash or '')[:16]}){anchored}")
        first = self.breaks[0]
        n = len(self.breaks) + self.more_breaks
        return (f"audit log TAMPERED: entry {first.entry_id}: {first.problem}"
                + (f" ({n} problems in all)" if n > 1 else ""))

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_id": self.head_id, "head_hash": self.head_hash,
                "breaks": [{"id": b.entry_id, "problem": b.problem} for b in self.breaks],
                "more_breaks": self.more_breaks, "anchor": self.anchor.as_json() if self.anchor else None}


def _problem(row: dict[str, Any], prev_id: int, prev_hash: str) -> str | None:
    """What is wrong with ``row`` following the entry ``prev_id`` whose stored hash is ``prev_hash``."""
    if not row["hash"]:
        return "it has no hash: it was added to the catalog file outside XLab"
    if entry_hash(row["prev_hash"] or "", row) != row["hash"]:
        return ("its content does not match its hash: it was changed after it was written "
                f"(now: {row['actor']} {row['action']} {row['entity']} {row['entity_key']!r} at {row['at']})")
    if (row["prev_hash"] or "") != prev_hash:
        if row["id"] > prev_id + 1:
            gap = f"entry {prev_id + 1}" if row["id"] == prev_id + 2 else f"entries {prev_id + 1} to {row['id'] - 1}"
            return f"{gap} before it {'is' if row['id'] == prev_id + 2 else 'are'} missing: removed from the log"
        if prev_id == 0:
            return "it does not start the chain: the entries before it were removed"
        return f"it does not follow entry {prev_id}: that entry was replaced, or this one was put in by hand"
    return None


def verify_chain(catalog: Catalog, anchor: Anchor | None = None) -> Iterator[Progress]:
    """Recompute the chain from the first entry; returns a :class:`ChainReport`.

    Streams the log in batches through the calling thread's read connection
    (no snapshot held across batches: entries appended meanwhile are checked
    too if they come before the end). ``anchor``: an entry that must still be
    there unchanged (default: the one the last backup recorded).
    """
    anchor = anchor if anchor is not None else recorded_anchor(catalog)
    _, _, total = store.head(catalog)
    report = ChainReport(anchor=anchor)
    prev_id, prev_hash = 0, ""
    anchor_seen = False
    yield Progress(0, total, "checking the audit log's chain")
    while True:
        rows = store.chain_batch(catalog, prev_id, BATCH)
        if not rows:
            break
        for row in rows:
            problem = _problem(row, prev_id, prev_hash)
            if problem is not None:
                if len(report.breaks) < MAX_BREAKS:
                    report.breaks.append(ChainBreak(row["id"], problem))
                else:
                    report.more_breaks += 1
            if anchor is not None and row["id"] == anchor.entry_id:
                anchor_seen = True
                if row["hash"] != anchor.hash:
                    report.breaks.insert(0, ChainBreak(row["id"], f"it is not the entry recorded by {anchor.source}: "
                                                                   "the log was rewritten after that"))
            # A break found, go on from what the file holds: one tampered entry is then one problem.
            prev_id, prev_hash = row["id"], row["hash"] or ""
            report.entries += 1
        yield Progress(report.entries, max(total, report.entries), f"{report.entries:,} entries checked")
    report.head_id, report.head_hash = prev_id, prev_hash or None
    if anchor is not None and not anchor_seen:
        report.breaks.insert(0, ChainBreak(anchor.entry_id, f"it is missing, yet {anchor.source} recorded it: "
                                                            "entries were removed from the log"))
    report.breaks.sort(key=lambda b: b.entry_id)
    return report


def head_anchor(catalog: Catalog, source: str) -> Anchor | None:
    """The newest entry as an anchor (None for an empty log)."""
    entry_id, digest, _ = store.head(catalog)
    return Anchor(entry_id, digest, utc_now(), source) if entry_id and digest else None


def recorded_anchor(catalog: Catalog) -> Anchor | None:
    value = dashboard_store.settings(catalog).get(ANCHOR_SETTING)
    if not isinstance(value, dict) or not value.get("id") or not value.get("hash"):
        return None
    return Anchor(int(value["id"]), str(value["hash"]), str(value.get("at", "")), str(value.get("source", "")))


def record_anchor(txn: WriteTransaction, anchor: Anchor) -> None:
    """Keep ``anchor`` as the entry later checks must find (in the caller's transaction)."""
    dashboard_store.set_setting(txn, ANCHOR_SETTING, anchor.as_json())
