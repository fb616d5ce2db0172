"""The scheduled backup: every N hours into one folder (lab settings), and the
last backup's age as the dashboards show it.

The window checks once an hour whether a backup is due and runs it in the
background; ``xlab backup`` run by the system's scheduler (cron, Task
Scheduler) does the same for a lab with no window open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.backup.backup import LAST_BACKUP_SETTING
from core.catalog import Catalog, WriteTransaction
from core.catalog import dashboard_store
from core.errors import BackupError

EVERY_SETTING = "backup_every_hours"
DEST_SETTING = "backup_dest"
MAX_HOURS = 24 * 31


@dataclass(frozen=True)
class BackupSchedule:
    every_hours: int  # 0: no scheduled backup
    dest: str | None
    last: dict[str, Any] | None  # what the last backup recorded (core.backup.backup._record)

    def age_hours(self, now: datetime | None = None) -> float | None:
        if not self.last or not self.last.get("at"):
            return None
        then = datetime.fromisoformat(self.last["at"])
        return ((now or datetime.now(timezone.utc)) - then).total_seconds() / 3600

    def due(self, now: datetime | None = None) -> bool:
        """A scheduled backup is due: none yet, or the last is ``every_hours`` old."""
        if not self.every_hours or not self.dest:
            return False
        age = self.age_hours(now)
        return age is None or age >= self.every_hours

    def describe(self, now: datetime | None = None, *, folder: bool = True) -> str:
        """One line for the dashboards: the last backup's age, and the schedule
        (``folder``: with the folder it goes to)."""
        if self.every_hours and self.dest:
            plan = f"every {self.every_hours} h" + (f" to {self.dest}" if folder else "")
        else:
            plan = "none scheduled"
        age = self.age_hours(now)
        if age is None:
            return f"Backup: none yet ({plan})"
        late = " — OVERDUE" if self.every_hours and age >= self.every_hours + 1 else ""
        problems = f", {self.last['problems']} problem(s)" if self.last.get("problems") else ""
        return f"Last backup: {_age(age)} ago{problems}{late} ({plan})"


def _age(hours: float) -> str:
    if hours < 1:
        return f"{max(0, int(hours * 60))} min"
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.0f} days"


def backup_schedule(catalog: Catalog) -> BackupSchedule:
    values = dashboard_store.settings(catalog)
    last = values.get(LAST_BACKUP_SETTING)
    return BackupSchedule(int(values.get(EVERY_SETTING) or 0), values.get(DEST_SETTING) or None,
                          last if isinstance(last, dict) else None)


def set_backup_schedule(catalog: Catalog, *, every_hours: int | None = None, dest: str | None = None,
                        actor: str | None = None) -> BackupSchedule:
    """Change the schedule (None leaves a value as it is; ``every_hours`` 0 stops it). Audited."""
    catalog.require("settings")
    if every_hours is not None and not 0 <= every_hours <= MAX_HOURS:
        raise BackupError(f"--backup-every-hours must be between 0 (off) and {MAX_HOURS}, not {every_hours}")
    changes: dict[str, Any] = {}
    if every_hours is not None:
        changes[EVERY_SETTING] = every_hours
    if dest is not None:
        changes[DEST_SETTING] = str(Path(dest).expanduser().resolve()) if dest else None
    current = backup_schedule(catalog)
    if changes.get(EVERY_SETTING, current.every_hours) and not changes.get(DEST_SETTING, current.dest):
        raise BackupError("a scheduled backup needs a folder: add --backup-dest DIR")
    with catalog.write(actor) as txn:
        for key, value in changes.items():
            before = dashboard_store.set_setting(txn, key, value)
            if before != value:
                txn.audit("set", "lab_settings", key, before, value)
    return backup_schedule(catalog)


def clear_in(txn: WriteTransaction) -> None:
    """Stop the schedule and forget the last backup, in ``txn`` (a restored lab: its
    backups are the original's, and its schedule would write over them)."""
    for key in (EVERY_SETTING, DEST_SETTING, LAST_BACKUP_SETTING):
        before = dashboard_store.set_setting(txn, key, None)
        if before is not None:
            txn.audit("set", "lab_settings", key, before, None)
