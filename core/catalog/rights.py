"""Who may change what: the four roles and the catalog tables each may write.

One table of rights serves both backends. On SQLite, :meth:`core.catalog.db.Catalog.write` checks
the tables a write changed (its change record) against the signed-in user's role before it
commits; on PostgreSQL the same table becomes the grants of one group role per XLab role
(:func:`grant_statements`), so the server refuses a script with a technician's credentials what
the window refuses the technician. Actions (what the window and the CLI offer) are named by the
permission they need (:data:`PERMISSIONS`); each permission names the tables its writes touch.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import PermissionDeniedError

ROLES = ("technician", "manager", "ml_engineer", "administrator")
ROLE_TITLES = {"technician": "technician", "manager": "manager", "ml_engineer": "ML engineer",
               "administrator": "administrator"}
# What each role does, in a line (the CLI's help, the window's users dialog).
ROLE_SUMMARY = ("Technician: sessions, ingest, labels. Manager: inventory, quotas, plans, settings, KPIs. "
                "ML engineer: labels, datasets, runs, KPIs. Administrator: everything, and the users.")

# permission -> (what it covers, in words; the roles that hold it; the tables its writes change)
PERMISSIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "capture": ("run capture sessions, ingest images and flag problems",
                ("technician", "manager", "ml_engineer", "administrator"),
                ("capture_sessions", "capture_steps", "images", "ingest_events", "quarantine", "dicos_reports",
                 "near_duplicates", "qa_flags", "qa_checked")),
    "labels": ("review, draw and import labels",
               ("technician", "manager", "ml_engineer", "administrator"),
               ("annotations", "annotation_revisions", "label_imports", "class_maps", "class_map_history")),
    "inventory": ("change the inventory (classes, items, bags, scanners) and classes' history",
                  ("manager", "administrator"),
                  ("threat_classes", "threat_families", "threat_items", "bags", "luggage_types", "poses",
                   "scanner_models", "scanners", "class_history")),
    "quotas": ("change quota plans, KPI thresholds and ratio steps",
               ("manager", "administrator"),
               ("quota_plans", "quota_plan_classes", "quota_cells")),
    "plans": ("plan capture sessions", ("manager", "administrator"), ("capture_plans",)),
    "settings": ("change the lab's settings (production target, backups)",
                 ("manager", "administrator"), ("lab_settings",)),
    "kpis": ("record KPI results and propose ratio steps", ("manager", "ml_engineer", "administrator"),
             ("kpi_results", "loop_steps")),
    "datasets": ("freeze and export dataset versions", ("ml_engineer", "administrator"),
                 ("dataset_versions", "dataset_parts", "dataset_cells", "dataset_held")),
    "runs": ("queue, run and evaluate training runs", ("ml_engineer", "administrator"),
             ("runs", "run_events", "run_results")),
    "users": ("add users and change their roles", ("administrator",), ("users",)),
}

# Written by the catalog's own triggers as a consequence of the tables above (tallies, counters,
# the audit log's chain): every role writes them, through those triggers. The audit log is
# insert-only for everyone (its triggers refuse any update or delete; on the server, the grant).
DERIVED_TABLES = ("change_counters", "cell_tally", "setup_tally", "tally_clock", "production_counts",
                  "label_class_counts", "label_image_counts", "label_clock", "split_pools", "image_labels",
                  "image_label_revisions", "audit_log")

_TABLE_PERMISSION = {table: name for name, (_, _, tables) in PERMISSIONS.items() for table in tables}


@dataclass(frozen=True)
class Identity:
    """Who is signed in. ``role``: one of :data:`ROLES`; None in an open lab (no users set up:
    everyone may do everything); "" for someone who is not a user of the lab (may read, not write)."""

    name: str
    role: str | None
    full_name: str = ""

    @property
    def title(self) -> str:
        if self.role is None:
            return "open lab (no users set up)"
        return ROLE_TITLES.get(self.role, "not a user of this lab")

    def may(self, permission: str) -> bool:
        return holds(self.role, permission)

    def why_not(self, permission: str) -> str:
        """Why this user may not do ``permission`` ('' when they may)."""
        if self.may(permission):
            return ""
        if not self.role:
            return (f"{self.name} is not a user of this lab: an administrator adds you with "
                    f"'xlab user add {self.name} --role ROLE'")
        return refusal(self.name, self.role, permission)

    def require(self, permission: str) -> None:
        """Raise :class:`PermissionDeniedError` unless this user may do ``permission``."""
        if not self.may(permission):
            raise PermissionDeniedError(self.why_not(permission))


def holds(role: str | None, permission: str) -> bool:
    """Whether ``role`` holds ``permission``; None is an open lab's everyone (every permission)."""
    return role is None or role in PERMISSIONS[permission][1]


def needed_roles(permission: str) -> str:
    """The roles that hold ``permission``, in words: 'a manager or an administrator'."""
    names = [ROLE_TITLES[r] for r in PERMISSIONS[permission][1]]
    words = [("an " if n[0] in "aeiouAEIOU" or n.startswith("ML") else "a ") + n for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def refusal(user: str, role: str, permission: str) -> str:
    """Why ``user`` (``role``) may not do ``permission``, with who can."""
    return (f"{user} is signed in as {ROLE_TITLES.get(role, role)} and may not "
            f"{PERMISSIONS[permission][0]}: ask {needed_roles(permission)}")


def check_write(who: Identity, tables: set[str] | frozenset[str]) -> None:
    """Raise :class:`PermissionDeniedError` when a write that changed ``tables`` needs a permission
    ``who`` lacks. A table no permission names and that is not derived is refused to every role
    but the administrator: a new table must be given its permission here."""
    if who.role is None or who.role == "administrator":
        return
    for table in sorted(tables):
        permission = _TABLE_PERMISSION.get(table)
        if permission is None:
            if table in DERIVED_TABLES:
                continue
            raise PermissionDeniedError(f"{who.name} is signed in as {who.title}: only an administrator "
                                        f"may change {table}")
        who.require(permission)


def group_role(role: str) -> str:
    """The server's group role of XLab role ``role`` (each user's login role is a member of one)."""
    return f"xlab_{role}"


def grant_statements(tables: list[str]) -> list[str]:
    """The server's grants for the catalog's ``tables``: every group reads everything; each writes
    the tables its permissions name and the derived ones; the audit log takes inserts only. Run by
    the catalog's owner after each migration (a new table gets its grants)."""
    statements = []
    for role in ROLES:
        group = group_role(role)
        statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {group}")
        statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {group}")
        for table in tables:
            permission = _TABLE_PERMISSION.get(table)
            if table == "audit_log":
                statements.append(f"GRANT INSERT ON audit_log TO {group}")
            elif table in DERIVED_TABLES or role == "administrator" or (permission and holds(role, permission)):
                statements.append(f"GRANT INSERT, UPDATE, DELETE ON {table} TO {group}")
            else:
                statements.append(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {table} FROM {group}")
    return statements
