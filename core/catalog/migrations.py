"""The catalog schema, as ordered, named migrations.

Each migration runs in its own transaction (sqlite-utils ``Migrations``) and is
recorded in ``_sqlite_migrations``. A shipped migration is never edited: change
the schema by appending a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

MIGRATION_SET = "xlab"
_STEPS: list[tuple[str, Callable[["Database"], None]]] = []


def migration(name: str) -> Callable:
    """Register the decorated function as the next migration, named ``name``."""
    def register(function: Callable[["Database"], None]) -> Callable[["Database"], None]:
        _STEPS.append((name, function))
        return function

    return register


def steps() -> list[tuple[str, Callable[["Database"], None]]]:
    """Every migration's name and function, in order."""
    return list(_STEPS)


def names() -> list[str]:
    """Every migration's name, in order."""
    return [name for name, _ in _STEPS]


def sqlite_utils_migrations() -> "Migrations":
    """The migrations as sqlite-utils applies them.

    sqlite-utils (and pandas and numpy, which it imports when installed) is
    loaded only here, when a catalog needs migrating: opening an up-to-date
    catalog, what every start of the window does, never pays for it.
    """
    from sqlite_utils.migrations import Migrations

    out = Migrations(MIGRATION_SET)
    for name, function in _STEPS:
        out(name=name)(function)
    return out


def _run(db: Database, statements: list[str]) -> None:
    # executescript() would COMMIT the migration's transaction; run one by one.
    for statement in statements:
        db.execute(statement)


# The per-cell tallies that the quota status reads are kept by triggers on
# ``images``. A "setup" is one physical arrangement (item, bag, pose) on one
# scanner model; the Wilson sizing counts setups, not images, because repeated
# scans of one setup are not independent.
_CELL_KEY_COLUMNS = "split, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key"
_SETUP_KEY_COLUMNS = "split, scanner_model_id, bag_id, item_key, pose_key"


def _counted(row: str) -> str:
    return (
        f"{row}.usable = 1 AND {row}.split IS NOT NULL AND {row}.bag_id IS NOT NULL "
        f"AND {row}.scanner_id IS NOT NULL"
    )


def _tally_statements(row: str, delta: int) -> str:
    """SQL (for a trigger body) that adds ``delta`` of image ``row`` to the tallies."""
    setup_match = (
        f"split = {row}.split AND scanner_model_id = (SELECT model_id FROM scanners WHERE id = {row}.scanner_id) "
        f"AND bag_id = {row}.bag_id AND item_key = IFNULL({row}.item_id, 0) AND pose_key = IFNULL({row}.pose_id, 0)"
    )
    # A setup starts counting when its first image arrives and stops when its
    # last one leaves.
    setup_edge = 1 if delta > 0 else 0
    return f"""
        INSERT INTO setup_tally ({_SETUP_KEY_COLUMNS}, images)
        SELECT {row}.split, s.model_id, {row}.bag_id, IFNULL({row}.item_id, 0), IFNULL({row}.pose_id, 0), {delta}
        FROM scanners s WHERE s.id = {row}.scanner_id
        ON CONFLICT ({_SETUP_KEY_COLUMNS}) DO UPDATE SET images = images + excluded.images;
        UPDATE tally_clock SET seq = seq + 1;
        INSERT INTO cell_tally ({_CELL_KEY_COLUMNS}, images, setups, seq)
        SELECT {row}.split,
               IFNULL((SELECT class_id FROM threat_items WHERE id = {row}.item_id), 0),
               b.luggage_type_id, b.clutter_level, s.model_id, IFNULL({row}.pose_id, 0),
               {delta},
               {'' if delta > 0 else '-'}(SELECT COUNT(*) FROM setup_tally WHERE {setup_match} AND images = {setup_edge}),
               (SELECT seq FROM tally_clock)
        FROM bags b, scanners s WHERE b.id = {row}.bag_id AND s.id = {row}.scanner_id
        ON CONFLICT ({_CELL_KEY_COLUMNS}) DO UPDATE
            SET images = images + excluded.images, setups = setups + excluded.setups, seq = excluded.seq;
        DELETE FROM setup_tally WHERE {setup_match} AND images = 0;
    """


def _forbid(trigger: str, event: str, table: str, when: str, message: str) -> str:
    when_clause = f" WHEN {when}" if when else ""
    return (
        f"CREATE TRIGGER {trigger} BEFORE {event} ON {table}{when_clause} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


@migration("0001_lab_inventory_quotas_images_audit")
def m0001(db: Database) -> None:
    _run(
        db,
        [
            """CREATE TABLE threat_families (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE threat_classes (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                family_id INTEGER NOT NULL REFERENCES threat_families(id),
                description TEXT NOT NULL DEFAULT '',
                active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)))""",
            """CREATE TABLE threat_items (
                id INTEGER PRIMARY KEY,
                barcode TEXT NOT NULL UNIQUE,
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                description TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX threat_items_class ON threat_items(class_id)",
            """CREATE TABLE luggage_types (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                description TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE bags (
                id INTEGER PRIMARY KEY,
                barcode TEXT NOT NULL UNIQUE,
                luggage_type_id INTEGER NOT NULL REFERENCES luggage_types(id),
                clutter_level TEXT NOT NULL CHECK (clutter_level IN ('low', 'medium', 'high')),
                description TEXT NOT NULL DEFAULT '')""",
            """CREATE TABLE scanner_models (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                vendor TEXT NOT NULL,
                views INTEGER NOT NULL CHECK (views >= 1),
                dual_energy INTEGER NOT NULL CHECK (dual_energy IN (0, 1)),
                width INTEGER NOT NULL CHECK (width > 0),
                height INTEGER NOT NULL CHECK (height > 0),
                bit_depth INTEGER NOT NULL CHECK (bit_depth IN (8, 12, 14, 16)),
                pixel_mm REAL NOT NULL CHECK (pixel_mm > 0),
                gain REAL NOT NULL DEFAULT 1.0 CHECK (gain > 0),
                noise REAL NOT NULL DEFAULT 0.01 CHECK (noise >= 0))""",
            """CREATE TABLE scanners (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                model_id INTEGER NOT NULL REFERENCES scanner_models(id),
                station TEXT NOT NULL,
                drop_folder TEXT NOT NULL)""",
            """CREATE TABLE poses (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                placement TEXT NOT NULL DEFAULT 'flat'
                    CHECK (placement IN ('flat', 'edge_on', 'angled', 'upright')),
                rotation_deg REAL NOT NULL DEFAULT 0,
                occlusion TEXT NOT NULL DEFAULT 'none'
                    CHECK (occlusion IN ('none', 'under_metal', 'under_organic', 'among_clutter')),
                description TEXT NOT NULL DEFAULT '')""",
            # Quota plans: a published plan is immutable (triggers below); an
            # edit is a new version of the same name.
            """CREATE TABLE quota_plans (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                version INTEGER NOT NULL CHECK (version >= 1),
                status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
                based_on INTEGER REFERENCES quota_plans(id),
                images_per_setup INTEGER NOT NULL DEFAULT 1 CHECK (images_per_setup >= 1),
                clean_false_alarm_rate REAL NOT NULL,
                clean_half_width REAL NOT NULL,
                clean_confidence REAL NOT NULL,
                clean_setups INTEGER NOT NULL CHECK (clean_setups >= 0),
                spec_json TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                published_at TEXT,
                published_by TEXT,
                UNIQUE (name, version))""",
            """CREATE TABLE quota_plan_classes (
                plan_id INTEGER NOT NULL REFERENCES quota_plans(id),
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                detection_rate REAL NOT NULL CHECK (detection_rate > 0 AND detection_rate < 1),
                half_width REAL NOT NULL CHECK (half_width > 0 AND half_width < 0.5),
                confidence REAL NOT NULL CHECK (confidence > 0 AND confidence < 1),
                max_false_alarm_rate REAL NOT NULL CHECK (max_false_alarm_rate >= 0 AND max_false_alarm_rate < 1),
                sizing TEXT NOT NULL CHECK (sizing IN ('wilson', 'demonstration')),
                misses_allowed INTEGER NOT NULL DEFAULT 0 CHECK (misses_allowed >= 0),
                required_setups INTEGER NOT NULL CHECK (required_setups >= 0),
                test_setups INTEGER NOT NULL CHECK (test_setups >= 0),
                ratio_step INTEGER NOT NULL DEFAULT 1 CHECK (ratio_step >= 0),
                PRIMARY KEY (plan_id, class_id))""",
            # class_id NULL: clean bags (no threat). pose_id NULL: no pose (clean).
            """CREATE TABLE quota_cells (
                id INTEGER PRIMARY KEY,
                plan_id INTEGER NOT NULL REFERENCES quota_plans(id),
                class_id INTEGER REFERENCES threat_classes(id),
                luggage_type_id INTEGER NOT NULL REFERENCES luggage_types(id),
                clutter_level TEXT NOT NULL CHECK (clutter_level IN ('low', 'medium', 'high')),
                scanner_model_id INTEGER NOT NULL REFERENCES scanner_models(id),
                pose_id INTEGER REFERENCES poses(id),
                class_key INTEGER GENERATED ALWAYS AS (IFNULL(class_id, 0)) VIRTUAL,
                pose_key INTEGER GENERATED ALWAYS AS (IFNULL(pose_id, 0)) VIRTUAL,
                test_target INTEGER NOT NULL CHECK (test_target >= 0),
                train_target INTEGER NOT NULL CHECK (train_target >= 0),
                overridden INTEGER NOT NULL DEFAULT 0 CHECK (overridden IN (0, 1)))""",
            """CREATE UNIQUE INDEX quota_cells_key ON quota_cells
                (plan_id, class_key, luggage_type_id, clutter_level, scanner_model_id, pose_key)""",
            _forbid("quota_plans_frozen", "UPDATE", "quota_plans", "OLD.status = 'published'",
                    "quota plan is published and cannot change; make a new version"),
            _forbid("quota_plans_keep", "DELETE", "quota_plans", "OLD.status = 'published'",
                    "a published quota plan cannot be deleted"),
            *[
                _forbid(f"{table}_frozen_{event.lower()}", event, table,
                        f"(SELECT status FROM quota_plans WHERE id = {ref}.plan_id) = 'published'",
                        "quota plan is published and cannot change; make a new version")
                for table in ("quota_cells", "quota_plan_classes")
                for event, ref in (("INSERT", "NEW"), ("UPDATE", "OLD"), ("DELETE", "OLD"))
            ],
            """CREATE TABLE images (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL UNIQUE,
                store_path TEXT NOT NULL,
                original_name TEXT NOT NULL DEFAULT '',
                scanner_id INTEGER REFERENCES scanners(id),
                captured_at TEXT NOT NULL,
                ingested_at TEXT NOT NULL,
                split TEXT CHECK (split IN ('test', 'train')),
                item_id INTEGER REFERENCES threat_items(id),
                bag_id INTEGER REFERENCES bags(id),
                pose_id INTEGER REFERENCES poses(id),
                width INTEGER,
                height INTEGER,
                bit_depth INTEGER,
                channels INTEGER,
                quality_flags TEXT NOT NULL DEFAULT '',
                usable INTEGER NOT NULL DEFAULT 1 CHECK (usable IN (0, 1)))""",
            "CREATE INDEX images_captured ON images(captured_at)",
            "CREATE INDEX images_scanner ON images(scanner_id, captured_at)",
            "CREATE INDEX images_setup ON images(bag_id, item_id, pose_id)",
            f"""CREATE TABLE setup_tally (
                split TEXT NOT NULL,
                scanner_model_id INTEGER NOT NULL,
                bag_id INTEGER NOT NULL,
                item_key INTEGER NOT NULL,
                pose_key INTEGER NOT NULL,
                images INTEGER NOT NULL,
                PRIMARY KEY ({_SETUP_KEY_COLUMNS})) WITHOUT ROWID""",
            f"""CREATE TABLE cell_tally (
                split TEXT NOT NULL,
                class_key INTEGER NOT NULL,
                luggage_type_id INTEGER NOT NULL,
                clutter_level TEXT NOT NULL,
                scanner_model_id INTEGER NOT NULL,
                pose_key INTEGER NOT NULL,
                images INTEGER NOT NULL,
                setups INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                PRIMARY KEY ({_CELL_KEY_COLUMNS})) WITHOUT ROWID""",
            # Every tally change stamps its row with the next clock value, so a
            # reader refreshes by fetching only rows newer than its last read.
            "CREATE INDEX cell_tally_seq ON cell_tally(seq)",
            # reset_seq: the clock value of the last full rebuild, which may drop
            # rows; a reader that read before it starts over.
            """CREATE TABLE tally_clock (id INTEGER PRIMARY KEY CHECK (id = 1),
                seq INTEGER NOT NULL, reset_seq INTEGER NOT NULL)""",
            "INSERT INTO tally_clock (id, seq, reset_seq) VALUES (1, 0, 0)",
            f"""CREATE TRIGGER images_tally_insert AFTER INSERT ON images WHEN {_counted('NEW')}
                BEGIN {_tally_statements('NEW', +1)} END""",
            f"""CREATE TRIGGER images_tally_delete AFTER DELETE ON images WHEN {_counted('OLD')}
                BEGIN {_tally_statements('OLD', -1)} END""",
            f"""CREATE TRIGGER images_tally_update_old
                AFTER UPDATE OF split, item_id, bag_id, pose_id, scanner_id, usable ON images
                WHEN {_counted('OLD')}
                BEGIN {_tally_statements('OLD', -1)} END""",
            f"""CREATE TRIGGER images_tally_update_new
                AFTER UPDATE OF split, item_id, bag_id, pose_id, scanner_id, usable ON images
                WHEN {_counted('NEW')}
                BEGIN {_tally_statements('NEW', +1)} END""",
            # The history of what changed and who changed it: append-only.
            """CREATE TABLE audit_log (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                entity TEXT NOT NULL,
                entity_key TEXT NOT NULL DEFAULT '',
                before_json TEXT,
                after_json TEXT)""",
            "CREATE INDEX audit_log_entity ON audit_log(entity, entity_key)",
            _forbid("audit_log_no_update", "UPDATE", "audit_log", "", "the audit log is append-only"),
            _forbid("audit_log_no_delete", "DELETE", "audit_log", "", "the audit log is append-only"),
        ],
    )


@migration("0002_ingest_capture_steps_quarantine_counters")
def m0002(db: Database) -> None:
    _run(
        db,
        [
            # Capture sessions and steps: what a scanner is capturing right now,
            # so arriving images inherit class, item, bag, pose and split.
            """CREATE TABLE capture_sessions (
                id INTEGER PRIMARY KEY,
                scanner_id INTEGER NOT NULL REFERENCES scanners(id),
                technician TEXT NOT NULL,
                session_date TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('planned', 'open', 'closed')),
                created_at TEXT NOT NULL)""",
            """CREATE TABLE capture_steps (
                id INTEGER PRIMARY KEY,
                session_id INTEGER NOT NULL REFERENCES capture_sessions(id),
                position INTEGER NOT NULL,
                bag_id INTEGER NOT NULL REFERENCES bags(id),
                item_id INTEGER REFERENCES threat_items(id),
                pose_id INTEGER REFERENCES poses(id),
                split TEXT NOT NULL CHECK (split IN ('test', 'train')),
                images_wanted INTEGER NOT NULL CHECK (images_wanted >= 1),
                status TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'active', 'done', 'skipped')),
                UNIQUE (session_id, position))""",
            "CREATE UNIQUE INDEX capture_steps_one_active ON capture_steps(session_id) WHERE status = 'active'",
            "ALTER TABLE images ADD COLUMN step_id INTEGER REFERENCES capture_steps(id)",
            "ALTER TABLE images ADD COLUMN technician TEXT",
            "ALTER TABLE images ADD COLUMN phash INTEGER",
            "ALTER TABLE images ADD COLUMN thumb_path TEXT",
            "ALTER TABLE images ADD COLUMN format TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE images ADD COLUMN source_path TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE images ADD COLUMN metadata_json TEXT",
            "CREATE INDEX images_step ON images(step_id)",
            "CREATE INDEX images_ingested ON images(ingested_at)",
            # Every file ingest looked at, and what became of it.
            """CREATE TABLE ingest_events (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                scanner_id INTEGER REFERENCES scanners(id),
                source_path TEXT NOT NULL,
                sha256 TEXT,
                outcome TEXT NOT NULL CHECK (outcome IN ('ingested', 'duplicate', 'quarantined', 'rejected')),
                image_id INTEGER REFERENCES images(id),
                detail TEXT NOT NULL DEFAULT '')""",
            "CREATE INDEX ingest_events_at ON ingest_events(at)",
            # Files that failed a check: kept (never deleted), with the reason.
            """CREATE TABLE quarantine (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                scanner_id INTEGER REFERENCES scanners(id),
                source_path TEXT NOT NULL,
                stored_path TEXT NOT NULL,
                sha256 TEXT,
                size INTEGER NOT NULL,
                reason_code TEXT NOT NULL,
                reason TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'retried', 'discarded')),
                resolved_at TEXT,
                resolved_by TEXT)""",
            "CREATE INDEX quarantine_status ON quarantine(status, at)",
            # Near-duplicates by perceptual hash; cross_split marks a test/train leak.
            """CREATE TABLE near_duplicates (
                image_id INTEGER NOT NULL REFERENCES images(id),
                other_id INTEGER NOT NULL REFERENCES images(id),
                distance INTEGER NOT NULL,
                cross_split INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (image_id, other_id))""",
            # Boxes: from DICOS threat detection reports, imports, or annotators.
            """CREATE TABLE annotations (
                id INTEGER PRIMARY KEY,
                image_id INTEGER NOT NULL REFERENCES images(id),
                class_id INTEGER REFERENCES threat_classes(id),
                label TEXT NOT NULL DEFAULT '',
                x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
                source TEXT NOT NULL CHECK (source IN ('tdr', 'import', 'manual')),
                qa_state TEXT NOT NULL DEFAULT 'unreviewed' CHECK (qa_state IN ('unreviewed', 'accepted', 'rejected')),
                created_at TEXT NOT NULL)""",
            "CREATE INDEX annotations_image ON annotations(image_id)",
            # DICOS threat detection reports: kept, and their boxes joined to the
            # image they reference once it is in the catalog.
            """CREATE TABLE dicos_reports (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL UNIQUE,
                store_path TEXT NOT NULL,
                referenced_uid TEXT NOT NULL,
                ground_truth INTEGER NOT NULL DEFAULT 0,
                boxes_json TEXT NOT NULL,
                image_id INTEGER REFERENCES images(id),
                received_at TEXT NOT NULL)""",
            "CREATE INDEX dicos_reports_uid ON dicos_reports(referenced_uid)",
            "ALTER TABLE images ADD COLUMN sop_instance_uid TEXT",
            "CREATE INDEX images_sop_uid ON images(sop_instance_uid) WHERE sop_instance_uid IS NOT NULL",
            # Production counters per day, scanner and technician, kept as images arrive.
            """CREATE TABLE production_counts (
                day TEXT NOT NULL,
                scanner_id INTEGER NOT NULL,
                technician TEXT NOT NULL,
                images INTEGER NOT NULL,
                PRIMARY KEY (day, scanner_id, technician)) WITHOUT ROWID""",
            """CREATE TRIGGER images_production AFTER INSERT ON images WHEN NEW.scanner_id IS NOT NULL
                BEGIN
                    INSERT INTO production_counts (day, scanner_id, technician, images)
                    VALUES (substr(NEW.captured_at, 1, 10), NEW.scanner_id, IFNULL(NEW.technician, ''), 1)
                    ON CONFLICT (day, scanner_id, technician) DO UPDATE SET images = images + 1;
                END""",
        ],
    )


def _pool_mismatch(row: str, item: str, bag: str) -> str:
    """True when an item or bag of ``row`` already belongs to the other split's pool."""
    return (
        f"{row}.split IS NOT NULL AND ("
        f"EXISTS (SELECT 1 FROM split_pools WHERE kind = 'item' AND object_id = {row}.{item} AND split != {row}.split)"
        f" OR EXISTS (SELECT 1 FROM split_pools WHERE kind = 'bag' AND object_id = {row}.{bag} AND split != {row}.split))"
    )


def _pool_claim(row: str, item: str, bag: str) -> str:
    """Statements that put a row's item and bag into its split's pool, if in none yet."""
    return (
        f"INSERT OR IGNORE INTO split_pools (kind, object_id, split, assigned_at, assigned_by) "
        f"SELECT 'item', {row}.{item}, {row}.split, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'first use' "
        f"WHERE {row}.{item} IS NOT NULL AND {row}.split IS NOT NULL; "
        f"INSERT OR IGNORE INTO split_pools (kind, object_id, split, assigned_at, assigned_by) "
        f"SELECT 'bag', {row}.{bag}, {row}.split, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'first use' "
        f"WHERE {row}.{bag} IS NOT NULL AND {row}.split IS NOT NULL;"
    )


_POOL_MESSAGE = "an item or bag of the test set is never used for training (and the other way round)"


@migration("0003_split_pools_capture_plans_checklist")
def m0003(db: Database) -> None:
    _run(
        db,
        [
            # Every physical item and bag belongs to one split, once and for
            # good: test and train never share an object.
            """CREATE TABLE split_pools (
                kind TEXT NOT NULL CHECK (kind IN ('item', 'bag')),
                object_id INTEGER NOT NULL,
                split TEXT NOT NULL CHECK (split IN ('test', 'train')),
                assigned_at TEXT NOT NULL,
                assigned_by TEXT NOT NULL,
                PRIMARY KEY (kind, object_id)) WITHOUT ROWID""",
            # Objects already captured keep the split they were captured for
            # (test first where an old catalog has both).
            """INSERT OR IGNORE INTO split_pools (kind, object_id, split, assigned_at, assigned_by)
               SELECT 'item', item_id, split, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'migration'
               FROM images WHERE item_id IS NOT NULL AND split IS NOT NULL ORDER BY split = 'test' DESC""",
            """INSERT OR IGNORE INTO split_pools (kind, object_id, split, assigned_at, assigned_by)
               SELECT 'bag', bag_id, split, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'migration'
               FROM images WHERE bag_id IS NOT NULL AND split IS NOT NULL ORDER BY split = 'test' DESC""",
            _forbid("split_pools_fixed", "UPDATE", "split_pools", "", "the split pool of an item or bag is fixed once assigned"),
            _forbid("split_pools_keep", "DELETE", "split_pools", "", "the split pool of an item or bag is fixed once assigned"),
            _forbid("capture_steps_pool_insert", "INSERT", "capture_steps",
                    _pool_mismatch("NEW", "item_id", "bag_id"), _POOL_MESSAGE),
            _forbid("capture_steps_pool_update", "UPDATE OF split, item_id, bag_id", "capture_steps",
                    _pool_mismatch("NEW", "item_id", "bag_id"), _POOL_MESSAGE),
            _forbid("images_pool_insert", "INSERT", "images", _pool_mismatch("NEW", "item_id", "bag_id"), _POOL_MESSAGE),
            _forbid("images_pool_update", "UPDATE OF split, item_id, bag_id", "images",
                    _pool_mismatch("NEW", "item_id", "bag_id"), _POOL_MESSAGE),
            f"CREATE TRIGGER capture_steps_pool_claim AFTER INSERT ON capture_steps BEGIN {_pool_claim('NEW', 'item_id', 'bag_id')} END",
            f"CREATE TRIGGER images_pool_claim AFTER INSERT ON images WHEN NEW.split IS NOT NULL BEGIN {_pool_claim('NEW', 'item_id', 'bag_id')} END",
            f"""CREATE TRIGGER images_pool_claim_update AFTER UPDATE OF split, item_id, bag_id ON images
                WHEN NEW.split IS NOT NULL BEGIN {_pool_claim('NEW', 'item_id', 'bag_id')} END""",
            # One run of the capture planner: its inputs and what it reported.
            """CREATE TABLE capture_plans (
                id INTEGER PRIMARY KEY,
                quota_plan_id INTEGER NOT NULL REFERENCES quota_plans(id),
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                options_json TEXT NOT NULL,
                report_json TEXT NOT NULL)""",
            "ALTER TABLE capture_sessions ADD COLUMN capture_plan_id INTEGER REFERENCES capture_plans(id)",
            "ALTER TABLE capture_sessions ADD COLUMN shift INTEGER NOT NULL DEFAULT 1",
            # A planned session a later plan replaced before anyone started it.
            "ALTER TABLE capture_sessions ADD COLUMN replaced_at TEXT",
            "ALTER TABLE capture_sessions ADD COLUMN started_at TEXT",
            "ALTER TABLE capture_sessions ADD COLUMN closed_at TEXT",
            # Who is running the session right now, where, and when they were last seen.
            "ALTER TABLE capture_sessions ADD COLUMN held_by TEXT",
            "ALTER TABLE capture_sessions ADD COLUMN held_host TEXT",
            "ALTER TABLE capture_sessions ADD COLUMN held_seen_at TEXT",
            "CREATE INDEX capture_sessions_day ON capture_sessions(session_date, scanner_id)",
            # Barcode confirmation: a step takes images only once its bag (and
            # item) tags were scanned.
            "ALTER TABLE capture_steps ADD COLUMN bag_scanned_at TEXT",
            "ALTER TABLE capture_steps ADD COLUMN item_scanned_at TEXT",
            "ALTER TABLE capture_steps ADD COLUMN confirmed_at TEXT",
            "ALTER TABLE capture_steps ADD COLUMN confirmed_by TEXT",
            "ALTER TABLE capture_steps ADD COLUMN skip_reason TEXT",
            "ALTER TABLE capture_steps ADD COLUMN flag_reason TEXT",
            # Steps opened before confirmation existed were confirmed by being opened.
            "UPDATE capture_steps SET confirmed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), confirmed_by = 'migration' WHERE status = 'active'",
        ],
    )


@migration("0004_lab_settings_kpi_results")
def m0004(db: Database) -> None:
    _run(
        db,
        [
            # Lab-wide settings a manager changes (monthly target, working days).
            """CREATE TABLE lab_settings (
                key TEXT PRIMARY KEY,
                value_json TEXT NOT NULL,
                changed_at TEXT NOT NULL,
                changed_by TEXT NOT NULL)""",
            # Per-class evaluation results on the test set: from XLab's own runs
            # or recorded from an evaluation done elsewhere. Counts, not rates,
            # so the confidence interval can be computed.
            """CREATE TABLE kpi_results (
                id INTEGER PRIMARY KEY,
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                run_label TEXT NOT NULL,
                evaluated_at TEXT NOT NULL,
                positives INTEGER NOT NULL CHECK (positives >= 0),
                detected INTEGER NOT NULL CHECK (detected >= 0 AND detected <= positives),
                negatives INTEGER NOT NULL CHECK (negatives >= 0),
                false_alarms INTEGER NOT NULL CHECK (false_alarms >= 0 AND false_alarms <= negatives),
                ratio_step INTEGER,
                source TEXT NOT NULL DEFAULT 'import',
                recorded_at TEXT NOT NULL,
                recorded_by TEXT NOT NULL)""",
            "CREATE INDEX kpi_results_class ON kpi_results(class_id, evaluated_at)",
            "CREATE INDEX ingest_events_day ON ingest_events(substr(at, 1, 10), outcome)",
        ],
    )


@migration("0005_production_counts_follow_technician")
def m0005(db: Database) -> None:
    _run(
        db,
        [
            # An image that arrives before its step's tags are scanned has no
            # technician yet; assigning it to a step (F5, `xlab ingest assign`)
            # names the technician afterwards. The counters were kept on
            # insert only, so such images stayed under "(no session)".
            """CREATE TRIGGER images_production_moved
                AFTER UPDATE OF technician, scanner_id, captured_at ON images
                WHEN IFNULL(OLD.technician, '') IS NOT IFNULL(NEW.technician, '')
                  OR OLD.scanner_id IS NOT NEW.scanner_id
                  OR substr(OLD.captured_at, 1, 10) IS NOT substr(NEW.captured_at, 1, 10)
                BEGIN
                    UPDATE production_counts SET images = images - 1
                    WHERE OLD.scanner_id IS NOT NULL AND day = substr(OLD.captured_at, 1, 10)
                      AND scanner_id = OLD.scanner_id AND technician = IFNULL(OLD.technician, '');
                    DELETE FROM production_counts WHERE images <= 0
                      AND day = substr(OLD.captured_at, 1, 10) AND scanner_id = OLD.scanner_id;
                    INSERT INTO production_counts (day, scanner_id, technician, images)
                    SELECT substr(NEW.captured_at, 1, 10), NEW.scanner_id, IFNULL(NEW.technician, ''), 1
                    WHERE NEW.scanner_id IS NOT NULL
                    ON CONFLICT (day, scanner_id, technician) DO UPDATE SET images = images + 1;
                END""",
            # Recount what earlier assignments left under the wrong name.
            "DELETE FROM production_counts",
            """INSERT INTO production_counts (day, scanner_id, technician, images)
               SELECT substr(captured_at, 1, 10), scanner_id, IFNULL(technician, ''), COUNT(*)
               FROM images WHERE scanner_id IS NOT NULL GROUP BY 1, 2, 3""",
        ],
    )


# Tables whose rows no view reads directly: the setup tally and its clock are
# the tallies' own bookkeeping (every change to them also changes cell_tally).
# dataset_held (which images some dataset version holds) only grows with a
# freeze, which also writes dataset_versions and dataset_parts.
UNCOUNTED_TABLES = frozenset({"setup_tally", "tally_clock", "change_counters", "_sqlite_migrations",
                              "dataset_held"})


def count_changes(*tables: str) -> list[str]:
    """Statements that make every write to ``tables`` advance their change counter.

    A migration that creates a table a view shows calls this for it, so that
    change records (core.catalog.db) name it without anyone listing it by
    hand. One counter row per table, bumped by a per-row trigger: the log
    never grows, and the cost is one primary-key update per written row.
    Migration 0006 runs this: changing what it emits changes a shipped
    migration, so write a new helper instead.
    """
    statements = [f"INSERT OR IGNORE INTO change_counters (tbl, seq) VALUES ('{t}', 0)" for t in tables]
    for table in tables:
        for event in ("INSERT", "UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER {table}_changed_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN UPDATE change_counters SET seq = seq + 1 WHERE tbl = '{table}'; END"
            )
    return statements


@migration("0006_change_counters")
def m0006(db: Database) -> None:
    # Writes made by triggers (cell_tally, production_counts, split_pools) are
    # counted too: SQLite fires triggers for statements run inside triggers.
    _run(
        db,
        [
            "CREATE TABLE change_counters (tbl TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID",
            *count_changes(
                "annotations", "audit_log", "bags", "capture_plans", "capture_sessions", "capture_steps",
                "cell_tally", "dicos_reports", "images", "ingest_events", "kpi_results", "lab_settings",
                "luggage_types", "near_duplicates", "poses", "production_counts", "quarantine", "quota_cells",
                "quota_plan_classes", "quota_plans", "scanner_models", "scanners", "split_pools",
                "threat_classes", "threat_families", "threat_items",
            ),
        ],
    )


# Box columns shared by an annotation's revisions and its current row.
_BOX_COLUMNS = ("image_id, class_id, label, x0, y0, x1, y1, iscrowd, difficult, truncated, score, rotation, "
                "source, qa_state, deleted")
_LABEL_SOURCES = "('scanner_report', 'ground_truth', 'import', 'manual', 'model')"
_QA_STATES = "('unreviewed', 'accepted', 'rejected', 'corrected')"


def _box_counts(row: str, delta: int) -> list[str]:
    """Statements (for a trigger body) adding ``delta`` of annotation ``row`` to the label counters."""
    sign = "+" if delta > 0 else "-"
    return [
        f"""INSERT INTO label_class_counts (class_key, qa_state, boxes)
            SELECT IFNULL({row}.class_id, 0), {row}.qa_state, {delta} WHERE {row}.deleted = 0
            ON CONFLICT (class_key, qa_state) DO UPDATE SET boxes = boxes {sign} 1""",
        f"""DELETE FROM label_class_counts
            WHERE class_key = IFNULL({row}.class_id, 0) AND qa_state = {row}.qa_state AND boxes = 0""",
        f"""INSERT INTO label_image_counts (image_id, boxes)
            SELECT {row}.image_id, {delta} WHERE {row}.deleted = 0 AND {row}.qa_state != 'rejected'
            ON CONFLICT (image_id) DO UPDATE SET boxes = boxes {sign} 1""",
        f"DELETE FROM label_image_counts WHERE image_id = {row}.image_id AND boxes = 0",
    ]


def _clean_bag_label(row: str, negative: int) -> str:
    """Statements that record image ``row`` as a labelled negative (1) or no longer one (0),
    taking the next value of the label clock."""
    return f"""
        INSERT INTO image_label_revisions (image_id, negative, source, actor, created_at, seq)
        SELECT {row}.id, {negative}, 'ground_truth', IFNULL({row}.technician, 'capture'),
               strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), (SELECT seq + 1 FROM label_clock);
        UPDATE label_clock SET seq = seq + 1;
    """


@migration("0007_labels")
def m0007(db: Database) -> None:
    # The model is documented in core/catalog/label_store.py.
    _run(
        db,
        [
            # The 0002 table had one row per box, edited in place; its rows
            # become each box's first revision below. Renamed first: a rename
            # rewrites the triggers that name a table, and the new ones below
            # must name the new table.
            "ALTER TABLE annotations RENAME TO annotations_0002",
            "DROP INDEX annotations_image",
            # One global, increasing number stamps every label change (box or
            # negative); the labels "as of" a moment are the latest revisions
            # at or below its number.
            "CREATE TABLE label_clock (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)",
            "INSERT INTO label_clock (id, seq) VALUES (1, 0)",
            # Each label import: what was read, from where, and what it made.
            """CREATE TABLE label_imports (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                format TEXT NOT NULL,
                path TEXT NOT NULL,
                source TEXT NOT NULL,
                images_dir TEXT,
                counts_json TEXT NOT NULL,
                problems_json TEXT NOT NULL DEFAULT '[]')""",
            # Boxes never change in place: every change is a new revision.
            f"""CREATE TABLE annotation_revisions (
                id INTEGER PRIMARY KEY,
                annotation_id INTEGER NOT NULL,
                image_id INTEGER NOT NULL REFERENCES images(id),
                class_id INTEGER REFERENCES threat_classes(id),
                label TEXT NOT NULL DEFAULT '',
                x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
                iscrowd INTEGER NOT NULL DEFAULT 0 CHECK (iscrowd IN (0, 1)),
                difficult INTEGER NOT NULL DEFAULT 0 CHECK (difficult IN (0, 1)),
                truncated INTEGER NOT NULL DEFAULT 0 CHECK (truncated IN (0, 1)),
                score REAL,
                rotation REAL NOT NULL DEFAULT 0,
                source TEXT NOT NULL CHECK (source IN {_LABEL_SOURCES}),
                qa_state TEXT NOT NULL DEFAULT 'unreviewed' CHECK (qa_state IN {_QA_STATES}),
                deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
                actor TEXT NOT NULL,
                created_at TEXT NOT NULL,
                seq INTEGER NOT NULL UNIQUE,
                import_id INTEGER REFERENCES label_imports(id),
                note TEXT NOT NULL DEFAULT '',
                CHECK (x1 > x0 AND y1 > y0))""",
            "CREATE INDEX annotation_revisions_box ON annotation_revisions(annotation_id, seq)",
            "CREATE INDEX annotation_revisions_image ON annotation_revisions(image_id, seq)",
            _forbid("annotation_revisions_no_update", "UPDATE", "annotation_revisions", "",
                    "annotation revisions are append-only; record a new revision instead"),
            _forbid("annotation_revisions_no_delete", "DELETE", "annotation_revisions", "",
                    "annotation revisions are append-only; record a deleting revision instead"),
            _forbid("annotation_revisions_same_image", "INSERT", "annotation_revisions",
                    "EXISTS (SELECT 1 FROM annotations WHERE id = NEW.annotation_id AND image_id != NEW.image_id)",
                    "a box belongs to one image; draw a new box on the other image"),
            # Each box's current revision, kept by the trigger below: what the
            # review queue and exports read without scanning the history.
            f"""CREATE TABLE annotations (
                id INTEGER PRIMARY KEY,
                revision_id INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                image_id INTEGER NOT NULL REFERENCES images(id),
                class_id INTEGER REFERENCES threat_classes(id),
                label TEXT NOT NULL DEFAULT '',
                x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
                iscrowd INTEGER NOT NULL DEFAULT 0,
                difficult INTEGER NOT NULL DEFAULT 0,
                truncated INTEGER NOT NULL DEFAULT 0,
                score REAL,
                rotation REAL NOT NULL DEFAULT 0,
                source TEXT NOT NULL CHECK (source IN {_LABEL_SOURCES}),
                qa_state TEXT NOT NULL CHECK (qa_state IN {_QA_STATES}),
                deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                updated_by TEXT NOT NULL)""",
            "CREATE INDEX annotations_image ON annotations(image_id) WHERE deleted = 0",
            "CREATE INDEX annotations_class ON annotations(class_id, qa_state) WHERE deleted = 0",
            f"""CREATE TRIGGER annotation_revisions_current AFTER INSERT ON annotation_revisions
                BEGIN
                    INSERT INTO annotations (id, revision_id, seq, {_BOX_COLUMNS}, created_at, updated_at, updated_by)
                    VALUES (NEW.annotation_id, NEW.id, NEW.seq, NEW.image_id, NEW.class_id, NEW.label,
                            NEW.x0, NEW.y0, NEW.x1, NEW.y1, NEW.iscrowd, NEW.difficult, NEW.truncated, NEW.score,
                            NEW.rotation, NEW.source, NEW.qa_state, NEW.deleted, NEW.created_at, NEW.created_at,
                            NEW.actor)
                    ON CONFLICT (id) DO UPDATE SET
                        revision_id = excluded.revision_id, seq = excluded.seq, class_id = excluded.class_id,
                        label = excluded.label, x0 = excluded.x0, y0 = excluded.y0, x1 = excluded.x1,
                        y1 = excluded.y1, iscrowd = excluded.iscrowd, difficult = excluded.difficult,
                        truncated = excluded.truncated, score = excluded.score, rotation = excluded.rotation,
                        source = excluded.source, qa_state = excluded.qa_state, deleted = excluded.deleted,
                        updated_at = excluded.updated_at, updated_by = excluded.updated_by
                    WHERE excluded.seq > annotations.seq;
                END""",
            # Counters a dashboard reads instead of grouping millions of boxes:
            # live boxes per class and review state, and live boxes not
            # rejected per image.
            """CREATE TABLE label_class_counts (
                class_key INTEGER NOT NULL,
                qa_state TEXT NOT NULL,
                boxes INTEGER NOT NULL,
                PRIMARY KEY (class_key, qa_state)) WITHOUT ROWID""",
            "CREATE TABLE label_image_counts (image_id INTEGER PRIMARY KEY, boxes INTEGER NOT NULL)",
            f"CREATE TRIGGER annotations_counts_insert AFTER INSERT ON annotations BEGIN {'; '.join(_box_counts('NEW', 1))}; END",
            f"""CREATE TRIGGER annotations_counts_update AFTER UPDATE OF deleted, class_id, qa_state ON annotations
                WHEN OLD.deleted IS NOT NEW.deleted OR OLD.class_id IS NOT NEW.class_id OR OLD.qa_state IS NOT NEW.qa_state
                BEGIN {'; '.join(_box_counts('OLD', -1) + _box_counts('NEW', 1))}; END""",
            f"CREATE TRIGGER annotations_counts_delete AFTER DELETE ON annotations BEGIN {'; '.join(_box_counts('OLD', -1))}; END",
            # Whether an image is a labelled negative (a clean bag): its own
            # append-only history on the same clock, and the current state.
            f"""CREATE TABLE image_label_revisions (
                id INTEGER PRIMARY KEY,
                image_id INTEGER NOT NULL REFERENCES images(id),
                negative INTEGER NOT NULL CHECK (negative IN (0, 1)),
                source TEXT NOT NULL CHECK (source IN {_LABEL_SOURCES}),
                actor TEXT NOT NULL,
                created_at TEXT NOT NULL,
                seq INTEGER NOT NULL UNIQUE,
                import_id INTEGER REFERENCES label_imports(id))""",
            "CREATE INDEX image_label_revisions_image ON image_label_revisions(image_id, seq)",
            _forbid("image_label_revisions_no_update", "UPDATE", "image_label_revisions", "",
                    "image label revisions are append-only; record a new revision instead"),
            _forbid("image_label_revisions_no_delete", "DELETE", "image_label_revisions", "",
                    "image label revisions are append-only; record a new revision instead"),
            """CREATE TABLE image_labels (
                image_id INTEGER PRIMARY KEY REFERENCES images(id),
                negative INTEGER NOT NULL CHECK (negative IN (0, 1)),
                source TEXT NOT NULL,
                revision_id INTEGER NOT NULL,
                seq INTEGER NOT NULL,
                updated_at TEXT NOT NULL,
                updated_by TEXT NOT NULL)""",
            "CREATE INDEX image_labels_negative ON image_labels(negative)",
            """CREATE TRIGGER image_label_revisions_current AFTER INSERT ON image_label_revisions
                BEGIN
                    INSERT INTO image_labels (image_id, negative, source, revision_id, seq, updated_at, updated_by)
                    VALUES (NEW.image_id, NEW.negative, NEW.source, NEW.id, NEW.seq, NEW.created_at, NEW.actor)
                    ON CONFLICT (image_id) DO UPDATE SET
                        negative = excluded.negative, source = excluded.source, revision_id = excluded.revision_id,
                        seq = excluded.seq, updated_at = excluded.updated_at, updated_by = excluded.updated_by
                    WHERE excluded.seq > image_labels.seq;
                END""",
            # A clean bag's capture step has no item: what the lab knows makes
            # its images labelled negatives, whoever ingests them and however
            # they reach their step (at arrival, or assigned later).
            f"""CREATE TRIGGER images_clean_bag_insert AFTER INSERT ON images
                WHEN NEW.step_id IS NOT NULL AND NEW.item_id IS NULL
                BEGIN {_clean_bag_label('NEW', 1)} END""",
            f"""CREATE TRIGGER images_clean_bag_update AFTER UPDATE OF step_id, item_id ON images
                WHEN NEW.step_id IS NOT NULL AND NEW.item_id IS NULL
                 AND NOT EXISTS (SELECT 1 FROM image_labels WHERE image_id = NEW.id AND negative = 1)
                BEGIN {_clean_bag_label('NEW', 1)} END""",
            f"""CREATE TRIGGER images_clean_bag_undone AFTER UPDATE OF step_id, item_id ON images
                WHEN NEW.item_id IS NOT NULL
                 AND EXISTS (SELECT 1 FROM image_labels WHERE image_id = NEW.id AND negative = 1
                             AND source = 'ground_truth')
                BEGIN {_clean_bag_label('NEW', 0)} END""",
            # The old rows, in their order, as first revisions. A DICOS report
            # marked ground truth was the simulator's (or a lab's reference);
            # any other came from the scanner's detector.
            f"""INSERT INTO annotation_revisions
                    (id, annotation_id, image_id, class_id, label, x0, y0, x1, y1, source, qa_state, deleted,
                     actor, created_at, seq)
                SELECT a.id, a.id, a.image_id, a.class_id, a.label, a.x0, a.y0, a.x1, a.y1,
                       CASE a.source
                           WHEN 'tdr' THEN CASE WHEN EXISTS (SELECT 1 FROM dicos_reports r
                                                             WHERE r.image_id = a.image_id AND r.ground_truth = 1)
                                                THEN 'ground_truth' ELSE 'scanner_report' END
                           ELSE a.source END,
                       a.qa_state, 0, 'migration', a.created_at, a.id
                FROM annotations_0002 a
                WHERE a.x1 > a.x0 AND a.y1 > a.y0
                ORDER BY a.id""",
            "UPDATE label_clock SET seq = IFNULL((SELECT MAX(seq) FROM annotation_revisions), 0)",
            "DROP TABLE annotations_0002",
            # Images captured on a clean-bag step before this migration.
            f"""INSERT INTO image_label_revisions (image_id, negative, source, actor, created_at, seq)
                SELECT id, 1, 'ground_truth', 'migration', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                       (SELECT seq FROM label_clock) + ROW_NUMBER() OVER (ORDER BY id)
                FROM images WHERE step_id IS NOT NULL AND item_id IS NULL ORDER BY id""",
            "UPDATE label_clock SET seq = MAX(seq, IFNULL((SELECT MAX(seq) FROM image_label_revisions), 0))",
            # Where an image from outside the lab's scanners was imported from:
            # its path relative to the folder given, so an export writes the
            # name its data set uses.
            "ALTER TABLE images ADD COLUMN rel_path TEXT",
            "CREATE INDEX images_rel_path ON images(rel_path) WHERE rel_path IS NOT NULL",
            "CREATE INDEX images_original_name ON images(original_name)",
            # The label checks compare the boxes of one physical item's images.
            "CREATE INDEX images_item ON images(item_id) WHERE item_id IS NOT NULL",
            # External class names (a public data set's, another tool's) onto
            # the lab's classes, kept per source for the next import of it.
            # class_id NULL: boxes of that name are left out on purpose.
            """CREATE TABLE class_maps (
                id INTEGER PRIMARY KEY,
                source TEXT NOT NULL,
                external TEXT NOT NULL,
                class_id INTEGER REFERENCES threat_classes(id),
                changed_at TEXT NOT NULL,
                changed_by TEXT NOT NULL,
                UNIQUE (source, external))""",
            """CREATE TABLE class_map_history (
                id INTEGER PRIMARY KEY,
                source TEXT NOT NULL,
                external TEXT NOT NULL,
                class_id INTEGER,
                previous_class_id INTEGER,
                at TEXT NOT NULL,
                actor TEXT NOT NULL)""",
            """CREATE TRIGGER class_maps_history_insert AFTER INSERT ON class_maps
                BEGIN
                    INSERT INTO class_map_history (source, external, class_id, previous_class_id, at, actor)
                    VALUES (NEW.source, NEW.external, NEW.class_id, NULL, NEW.changed_at, NEW.changed_by);
                END""",
            """CREATE TRIGGER class_maps_history_update AFTER UPDATE OF class_id ON class_maps
                WHEN OLD.class_id IS NOT NEW.class_id
                BEGIN
                    INSERT INTO class_map_history (source, external, class_id, previous_class_id, at, actor)
                    VALUES (NEW.source, NEW.external, NEW.class_id, OLD.class_id, NEW.changed_at, NEW.changed_by);
                END""",
            _forbid("class_map_history_no_update", "UPDATE", "class_map_history", "", "class map history is append-only"),
            _forbid("class_map_history_no_delete", "DELETE", "class_map_history", "", "class map history is append-only"),
            # Findings of the label checks (core.labels.qa); risk orders the
            # review queue. One open flag per image, box and check.
            """CREATE TABLE qa_flags (
                id INTEGER PRIMARY KEY,
                image_id INTEGER NOT NULL REFERENCES images(id),
                annotation_id INTEGER REFERENCES annotations(id),
                code TEXT NOT NULL,
                reason TEXT NOT NULL,
                risk REAL NOT NULL,
                state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved', 'dismissed')),
                created_at TEXT NOT NULL,
                resolved_at TEXT,
                resolved_by TEXT)""",
            """CREATE UNIQUE INDEX qa_flags_open ON qa_flags(image_id, IFNULL(annotation_id, 0), code)
                WHERE state = 'open'""",
            "CREATE INDEX qa_flags_queue ON qa_flags(state, risk DESC, image_id)",
            # How far the checks have looked: label changes up to seq, images up to image_id.
            """CREATE TABLE qa_checked (id INTEGER PRIMARY KEY CHECK (id = 1),
                seq INTEGER NOT NULL, image_id INTEGER NOT NULL)""",
            "INSERT INTO qa_checked (id, seq, image_id) VALUES (1, 0, 0)",
            # Class changes (rename, merge, split, move to another family):
            # what was done, to which classes, by whom.
            """CREATE TABLE class_history (
                id INTEGER PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('rename', 'merge', 'split', 'move')),
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                other_class_id INTEGER REFERENCES threat_classes(id),
                detail_json TEXT NOT NULL)""",
            "CREATE INDEX class_history_class ON class_history(class_id, at)",
            _forbid("class_history_no_update", "UPDATE", "class_history", "", "class history is append-only"),
            _forbid("class_history_no_delete", "DELETE", "class_history", "", "class history is append-only"),
            *count_changes(
                "annotations", "annotation_revisions", "class_history", "class_map_history", "class_maps",
                "image_label_revisions", "image_labels", "label_class_counts", "label_clock", "label_image_counts",
                "label_imports", "qa_checked", "qa_flags",
            ),
        ],
    )


# A subset a frozen dataset version puts an image in; validation is carved
# from train, never from test.
_DATASET_SUBSETS = "('test', 'train', 'validation')"
_DATASET_FROZEN = "dataset version is frozen and cannot change; freeze a new version instead"


@migration("0008_dataset_versions")
def m0008(db: Database) -> None:
    # The model is documented in core/catalog/dataset_store.py.
    _run(
        db,
        [
            # A version is built inside one transaction as 'building' (its
            # members, counts and hash written), then frozen; from then on the
            # triggers below refuse any change to it or its members.
            """CREATE TABLE dataset_versions (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                version INTEGER NOT NULL CHECK (version >= 1),
                status TEXT NOT NULL CHECK (status IN ('building', 'frozen')),
                rule TEXT NOT NULL CHECK (rule IN ('test', 'train')),
                rule_json TEXT NOT NULL,
                plan_id INTEGER NOT NULL REFERENCES quota_plans(id),
                parent_id INTEGER REFERENCES dataset_versions(id),
                test_version_id INTEGER REFERENCES dataset_versions(id),
                seed INTEGER,
                label_seq INTEGER NOT NULL,
                images INTEGER NOT NULL DEFAULT 0,
                boxes INTEGER NOT NULL DEFAULT 0,
                content_hash TEXT NOT NULL DEFAULT '',
                report_json TEXT NOT NULL DEFAULT '{}',
                stats_json TEXT NOT NULL DEFAULT '{}',
                frozen_at TEXT NOT NULL,
                frozen_by TEXT NOT NULL,
                UNIQUE (name, version))""",
            "CREATE INDEX dataset_versions_parent ON dataset_versions(parent_id)",
            # A version's cells: its members' quota cells as they were at
            # freeze, numbered from 0 (the members' ``cells`` arrays hold these
            # numbers).
            """CREATE TABLE dataset_cells (
                version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
                cell INTEGER NOT NULL,
                class_key INTEGER NOT NULL,
                luggage_type_id INTEGER NOT NULL,
                clutter_level TEXT NOT NULL,
                scanner_model_id INTEGER NOT NULL,
                pose_key INTEGER NOT NULL,
                PRIMARY KEY (version_id, cell)) WITHOUT ROWID""",
            # A version's members in parts of up to 2^18 images, ascending by
            # image id: one little-endian array per column (image_ids int64,
            # subsets uint8 (0 test, 1 train, 2 validation), cells int32,
            # item_keys and bag_ids int64, negatives uint8, boxes int32) and
            # the label revision ids of the part's images (int64, each image's
            # ``boxes`` ids in turn, ascending). A million-image version is a
            # handful of rows: written, checked and read whole, diffs and
            # counts work on the arrays and never read the label history.
            """CREATE TABLE dataset_parts (
                version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
                part INTEGER NOT NULL,
                images INTEGER NOT NULL,
                first_image INTEGER NOT NULL,
                last_image INTEGER NOT NULL,
                image_ids BLOB NOT NULL,
                subsets BLOB NOT NULL,
                cells BLOB NOT NULL,
                item_keys BLOB NOT NULL,
                bag_ids BLOB NOT NULL,
                negatives BLOB NOT NULL,
                boxes BLOB NOT NULL,
                revisions BLOB NOT NULL,
                UNIQUE (version_id, part))""",
            # Every image some version holds (with the first version that
            # took it): what an image delete checks. Versions are never
            # deleted, so rows are only added.
            """CREATE TABLE dataset_held (
                image_id INTEGER PRIMARY KEY,
                version_id INTEGER NOT NULL REFERENCES dataset_versions(id))""",
            _forbid("dataset_versions_frozen", "UPDATE", "dataset_versions", "OLD.status = 'frozen'", _DATASET_FROZEN),
            _forbid("dataset_versions_keep", "DELETE", "dataset_versions", "OLD.status = 'frozen'", _DATASET_FROZEN),
            # Few rows per version, so these per-row checks cost nothing.
            *[
                _forbid(f"{table}_frozen_{event.lower()}", event, table, " OR ".join(
                    f"(SELECT status FROM dataset_versions WHERE id = {ref}.version_id) IS NOT 'building'"
                    for ref in refs), _DATASET_FROZEN)
                for table in ("dataset_cells", "dataset_parts")
                for event, refs in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",)))
            ],
            _forbid("dataset_held_no_update", "UPDATE", "dataset_held", "", _DATASET_FROZEN),
            _forbid("dataset_held_no_delete", "DELETE", "dataset_held", "", _DATASET_FROZEN),
            _forbid("images_in_dataset_keep", "DELETE", "images",
                    "EXISTS (SELECT 1 FROM dataset_held WHERE image_id = OLD.id)",
                    "the image belongs to a frozen dataset version and is kept with it"),
            *count_changes("dataset_cells", "dataset_parts", "dataset_versions"),
        ],
    )


_RUN_STATES = "('queued', 'running', 'cancelling', 'done', 'cancelled', 'failed', 'interrupted')"


@migration("0009_runs_and_the_loop")
def m0009(db: Database) -> None:
    # The model is documented in core/catalog/run_store.py.
    _run(
        db,
        [
            # A training or evaluation run on exact dataset versions. What a
            # reproduction needs is in its own columns and spec_json; what the
            # run process reported about its environment lands in env_json.
            f"""CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('train', 'eval')),
                state TEXT NOT NULL CHECK (state IN {_RUN_STATES}),
                model TEXT NOT NULL,
                params_json TEXT NOT NULL,
                seed INTEGER NOT NULL,
                train_version_id INTEGER REFERENCES dataset_versions(id),
                test_version_id INTEGER REFERENCES dataset_versions(id),
                source_run_id INTEGER REFERENCES runs(id),
                weights_path TEXT,
                weights_sha256 TEXT,
                classes_json TEXT NOT NULL,
                code_version TEXT NOT NULL,
                run_dir TEXT NOT NULL,
                env_json TEXT NOT NULL DEFAULT '{{}}',
                device TEXT,
                model_sha256 TEXT,
                metrics_json TEXT NOT NULL DEFAULT '{{}}',
                message TEXT NOT NULL DEFAULT '',
                note TEXT NOT NULL DEFAULT '',
                host TEXT,
                pid INTEGER,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT)""",
            "CREATE INDEX runs_state ON runs(state, id)",
            # What the run process streamed (steps thinned to a few a second),
            # in order; a run resumed after an interruption appends.
            """CREATE TABLE run_events (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                seq INTEGER NOT NULL,
                at REAL NOT NULL,
                event TEXT NOT NULL,
                data_json TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)) WITHOUT ROWID""",
            # A run's per-class results on a split at its operating threshold:
            # counts over distinct setups (fractional under the 'fraction'
            # rule), so intervals can be recomputed, and the COCO figures.
            """CREATE TABLE run_results (
                run_id INTEGER NOT NULL REFERENCES runs(id),
                split TEXT NOT NULL CHECK (split IN ('test', 'validation')),
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                threshold REAL,
                threshold_rule TEXT NOT NULL DEFAULT '',
                positives INTEGER NOT NULL,
                detected REAL NOT NULL,
                positive_images INTEGER NOT NULL,
                detected_images INTEGER NOT NULL,
                negatives INTEGER NOT NULL,
                false_alarms REAL NOT NULL,
                pd REAL, pd_low REAL, pd_high REAL,
                far REAL, far_low REAL, far_high REAL,
                ap REAL, ap50 REAL, ap75 REAL, recall REAL,
                PRIMARY KEY (run_id, split, class_id))""",
            # The KPI results a run wrote for the Classes dashboard point back
            # at it and at the test set they were measured on.
            "ALTER TABLE kpi_results ADD COLUMN run_id INTEGER REFERENCES runs(id)",
            "ALTER TABLE kpi_results ADD COLUMN test_version_id INTEGER REFERENCES dataset_versions(id)",
            "ALTER TABLE kpi_results ADD COLUMN ap50 REAL",
            # The loop: per class, what a run's verdict proposes for the ratio
            # step, and whether (and by whom) it was accepted into a new plan
            # version. Proposals are kept when refused or superseded.
            """CREATE TABLE loop_steps (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id),
                plan_id INTEGER NOT NULL REFERENCES quota_plans(id),
                class_id INTEGER NOT NULL REFERENCES threat_classes(id),
                verdict TEXT NOT NULL,
                ratio_from INTEGER NOT NULL,
                ratio_to INTEGER NOT NULL,
                reason TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('proposed', 'accepted', 'superseded')),
                proposed_at TEXT NOT NULL,
                decided_at TEXT,
                decided_by TEXT,
                new_plan_id INTEGER REFERENCES quota_plans(id),
                UNIQUE (run_id, class_id))""",
            "CREATE INDEX loop_steps_state ON loop_steps(state, plan_id)",
            _forbid("run_results_no_update", "UPDATE", "run_results", "", "the results of a run are kept as measured"),
            _forbid("run_results_no_delete", "DELETE", "run_results", "", "the results of a run are kept as measured"),
            _forbid("run_events_no_update", "UPDATE", "run_events", "", "the events of a run are kept as they came"),
            _forbid("run_events_no_delete", "DELETE", "run_events", "", "the events of a run are kept as they came"),
            _forbid("runs_keep", "DELETE", "runs", "", "runs are kept with their records"),
            *count_changes("runs", "run_events", "run_results", "loop_steps"),
        ],
    )


@migration("0010_audit_chain")
def m0010(db: Database) -> None:
    # Each entry carries the hash of the one before it (core/catalog/audit_chain.py),
    # so a change made to the file behind XLab's back is found by `xlab audit verify`.
    from core.catalog.audit_chain import HASHED_FIELDS, entry_hash

    _run(db, ["ALTER TABLE audit_log ADD COLUMN prev_hash TEXT",
              "ALTER TABLE audit_log ADD COLUMN hash TEXT",
              # The viewer's filters, newest first within each.
              "CREATE INDEX audit_log_at ON audit_log(at)",
              "CREATE INDEX audit_log_actor ON audit_log(actor, id)",
              "CREATE INDEX audit_log_action ON audit_log(action, id)",
              # The entries written before this migration get their hashes once,
              # here; the append-only rule is back before the migration ends.
              "DROP TRIGGER audit_log_no_update"])
    prev = ""
    columns = ", ".join(HASHED_FIELDS)
    last_id = 0
    while True:
        rows = db.execute(f"SELECT {columns} FROM audit_log WHERE id > ? ORDER BY id LIMIT 5000",
                          (last_id,)).fetchall()
        if not rows:
            break
        updates = []
        for row in rows:
            entry = dict(zip(HASHED_FIELDS, row))
            digest = entry_hash(prev, entry)
            updates.append((prev, digest, entry["id"]))
            prev, last_id = digest, entry["id"]
        db.conn.executemany("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?", updates)
    _run(db, [_forbid("audit_log_no_update", "UPDATE", "audit_log", "", "the audit log is append-only")])


@migration("0011_annotations_live_boxes")
def m0011(db: Database) -> None:
    # A freeze reads every live (not deleted, not rejected) box of a million images: this index
    # holds exactly those boxes, by image and revision, with the columns the freeze reads, so the
    # read is a scan of a narrow index in image order instead of the wide table filtered row by
    # row and sorted after (core/catalog/dataset_store.py).
    _run(db, ["CREATE INDEX annotations_live_boxes ON annotations "
              "(image_id, revision_id, class_id, x0, y0, x1, y1) WHERE deleted = 0 AND qa_state != 'rejected'"])


@migration("0012_users")
def m0012(db: Database) -> None:
    # The lab's users and their roles (core.catalog.rights). A user is never deleted (the audit log
    # names them): one who left is disabled. pin_hash: "scrypt$salt$digest" for a shared station's
    # sign-in, NULL where the user signs in only from their own login. While the table is empty the
    # lab is open: everyone may do everything (a lab made before roles, or not set up yet).
    _run(db, ["""CREATE TABLE users (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL CHECK (role IN ('technician', 'manager', 'ml_engineer', 'administrator')),
                full_name TEXT NOT NULL DEFAULT '',
                pin_hash TEXT,
                disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
                added_at TEXT NOT NULL,
                added_by TEXT NOT NULL
            )""",
              _forbid("users_no_delete", "DELETE", "users", "", "a user is disabled, never deleted"),
              *count_changes("users")])
