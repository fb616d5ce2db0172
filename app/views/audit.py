"""Audit: every change to the lab — who, when, what, before and after.

Everything goes through ``core.audit`` (the same calls as ``xlab audit``), off
the GUI thread: a page of ``PAGE`` entries at a time (the log may hold
millions) through app.tasks' pool, the export and the chain check as
generator tasks with progress and Cancel. The filter bar narrows the list
by user, object, key, action and dates; the selected entry's before and
after are shown side by side; "History of this object" lists every change to
the selected entry's object (an image with its boxes, a class under all its
names, a plan's versions and cells). While the newest page is on screen, new
entries appear as they are written.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import QDate, QSettings, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import announce_saved, choose_save_path, show_error
from app.table_model import Column, RowsModel, make_table
from app.views.area import AreaView
from core.audit import log
from core.lab import Lab

PAGE = 200
ANY = ""  # the filter boxes' "any" entry
NO_DATE = QDate(2000, 1, 1)  # a date box at this value reads "any"
OK_STYLE = "color: #1a7f37; font-weight: bold"
BROKEN_STYLE = "color: #b00020; font-weight: bold"
KEY_CHARS = 36


def _when(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value or "")


def _key(value: Any) -> str:
    # Keys such as a quota cell's are long; the full key is above the before/after panes.
    text = str(value or "")
    return text if len(text) <= KEY_CHARS else text[:KEY_CHARS - 1] + "…"


COLUMNS = [
    Column("id", "ID"),
    Column("at", "When", _when, tooltip="Local time"),
    Column("actor", "User"),
    Column("action", "Action"),
    Column("entity", "Object"),
    Column("entity_key", "Key", _key),
    Column("change", "Change", stretch=True),
]


def _pretty(value: Any) -> str:
    if value is None:
        return "(nothing)"
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


class AuditView(AreaView):
    loaded = Signal()  # a page (or a history) is on screen
    verified = Signal(object)  # core.audit.chain.ChainReport
    exported = Signal(object)  # core.audit.log.ExportReport
    relevant_tables = ("audit_log",)

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self._settings = settings
        self._loading = False
        self._choices_loaded = False
        self._before_id: int | None = None  # the page shown: entries older than this (None: the newest)
        self._after_id: int | None = None
        self._history: tuple[str, str] | None = None  # (entity, key) while one object's history is shown
        self.rows: list[dict[str, Any]] = []
        self._task: tasks.GeneratorTask | None = None

        self.user_box = self._combo("Any user")
        self.entity_box = self._combo("Any object")
        self.action_box = self._combo("Any action")
        self.key_edit = QLineEdit()
        self.key_edit.setPlaceholderText("id or name")
        self.key_edit.returnPressed.connect(self.apply_filters)
        self.since_edit = self._date_box()
        self.until_edit = self._date_box()
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply_filters)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear_filters)
        filters = QGridLayout()
        for column, (label, widget) in enumerate((("User", self.user_box), ("Object", self.entity_box),
                                                  ("Key", self.key_edit), ("Action", self.action_box),
                                                  ("From", self.since_edit), ("To", self.until_edit))):
            filters.addWidget(QLabel(label), 0, column)
            filters.addWidget(widget, 1, column)
        filters.addWidget(self.apply_button, 1, 6)
        filters.addWidget(self.clear_button, 1, 7)

        self.mode_label = QLabel("")
        self.newer_button = QPushButton("◀ Newer")
        self.newer_button.clicked.connect(self.newer_page)
        self.older_button = QPushButton("Older ▶")
        self.older_button.clicked.connect(self.older_page)
        self.history_button = QPushButton("History of this object")
        self.history_button.setToolTip("Every change to the selected entry's object: an image with its boxes, "
                                       "a class under all its names, a quota plan's versions and cells")
        self.history_button.clicked.connect(self.show_history)
        self.back_button = QPushButton("Back to the list")
        self.back_button.clicked.connect(self.back_to_list)
        self.back_button.hide()
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("The entries the filters select, oldest first, as CSV or Excel")
        self.export_button.clicked.connect(self._choose_export)
        self.verify_button = QPushButton("Verify chain")
        self.verify_button.setToolTip("Recompute the audit log's hash chain: any entry changed, removed or added "
                                      "behind XLab's back is named")
        self.verify_button.clicked.connect(self.verify)
        self.verify_label = QLabel("")
        self.verify_label.setWordWrap(True)
        bar = QHBoxLayout()
        bar.addWidget(self.mode_label)
        bar.addStretch(1)
        for widget in (self.newer_button, self.older_button, self.history_button, self.back_button,
                       self.export_button, self.verify_button):
            bar.addWidget(widget)

        self.model = RowsModel(COLUMNS, self)
        self.table, self.proxy = make_table(self.model)
        self.table.setObjectName("audit entries")
        self.table.setSortingEnabled(False)  # the order is the log's: newest first (or oldest, in a history)
        self.proxy.sort(-1)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.entry_label = QLabel("Select an entry to see what it changed.")
        self.entry_label.setWordWrap(True)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.before_text, self.after_text = QPlainTextEdit(), QPlainTextEdit()
        sides = QHBoxLayout()
        for title, text in (("Before", self.before_text), ("After", self.after_text)):
            text.setReadOnly(True)
            text.setFont(mono)
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b>"))
            column.addWidget(text)
            sides.addLayout(column)
        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.entry_label)
        detail_layout.addLayout(sides)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.verify_label)
        self._update_buttons()

    @staticmethod
    def _combo(any_text: str) -> QComboBox:
        box = QComboBox()
        box.setEditable(True)  # a user or key the log does not list yet can be typed
        box.addItem(ANY)
        box.lineEdit().setPlaceholderText(any_text)
        box.setMinimumWidth(130)
        return box

    @staticmethod
    def _date_box() -> QDateEdit:
        box = QDateEdit()
        box.setCalendarPopup(True)
        box.setDisplayFormat("yyyy-MM-dd")
        box.setMinimumDate(NO_DATE)
        box.setSpecialValueText("any")
        box.setDate(NO_DATE)
        return box

    # -- filters -----------------------------------------------------------------------------

    def audit_filter(self) -> log.AuditFilter:
        def day(box: QDateEdit) -> str | None:
            return None if box.date() == NO_DATE else box.date().toString("yyyy-MM-dd")

        return log.AuditFilter(user=self.user_box.currentText().strip() or None,
                               entity=self.entity_box.currentText().strip() or None,
                               key=self.key_edit.text().strip() or None,
                               action=self.action_box.currentText().strip() or None,
                               since=day(self.since_edit), until=day(self.until_edit))

    def apply_filters(self) -> None:
        self._history = None
        self._before_id = self._after_id = None
        self.refresh()

    def clear_filters(self) -> None:
        for box in (self.user_box, self.entity_box, self.action_box):
            box.setCurrentText(ANY)
        self.key_edit.clear()
        self.since_edit.setDate(NO_DATE)
        self.until_edit.setDate(NO_DATE)
        self.apply_filters()

    def _fill_choices(self, choices: dict[str, list[str]]) -> None:
        self._choices_loaded = True
        for box, values in ((self.user_box, choices["user"]), (self.entity_box, choices["entity"]),
                            (self.action_box, choices["action"])):
            text = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems([ANY, *values])
            box.setCurrentText(text)
            box.blockSignals(False)

    # -- reading -----------------------------------------------------------------------------

    def on_catalog_changed(self, change) -> None:
        """New entries show up only where they belong: on the newest page of the list."""
        if change.touches(*self.relevant_tables):
            self._choices_loaded = False
            if self._history is None and self._before_id is None and self._after_id is None:
                super().on_catalog_changed(change)

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        lab, history, before, after = self._lab, self._history, self._before_id, self._after_id
        try:
            flt = self.audit_filter()
            flt.conditions()  # a date range that cannot match is said now, not from the pool
        except Exception as exc:  # noqa: BLE001 - shown to the user
            self._loading = False
            show_error(self, "Audit log", exc)
            return
        if not self._choices_loaded:
            tasks.call(lambda: log.choices(lab.catalog), self._fill_choices,
                       lambda exc: show_error(self, "Could not read the filter choices", exc), self)

        def read() -> tuple[list[dict[str, Any]], bool]:
            """The rows, and whether they are the newest page."""
            if history is not None:
                return log.history(lab.catalog, *history), False
            if after is None:
                return log.entries(lab.catalog, flt, PAGE, before_id=before), before is None
            # One more than a page: whether entries newer than that page remain.
            rows = log.entries(lab.catalog, flt, PAGE + 1, after_id=after)
            if len(rows) <= PAGE:
                return log.entries(lab.catalog, flt, PAGE), True  # paged back to the newest
            return rows[1:], False

        tasks.call(read, self._loaded, self._failed, self)

    def _loaded(self, result: tuple[list[dict[str, Any]], bool]) -> None:
        rows, newest = result
        self._loading = False
        if newest:
            self._before_id = self._after_id = None
        self.rows = rows
        self.model.set_rows(rows)
        if self._history is not None:
            entity, key = self._history
            self.mode_label.setText(f"History of {entity} {key}: {len(rows):,} change(s), oldest first")
        elif not rows:
            self.mode_label.setText("No entry matches these filters")
        else:
            self.mode_label.setText(f"{'Newest' if newest else 'Older'} entries: {rows[0]['id']:,} to "
                                    f"{rows[-1]['id']:,} ({len(rows)} shown, newest first)")
        self._update_buttons()
        if rows:
            self.table.selectRow(0)
        else:
            self._show_selected()
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read the audit log", exc)

    def _update_buttons(self) -> None:
        listing = self._history is None
        self.newer_button.setEnabled(listing and (self._before_id is not None or self._after_id is not None))
        self.older_button.setEnabled(listing and len(self.rows) == PAGE)
        self.history_button.setEnabled(listing and self.selected() is not None)
        self.back_button.setVisible(not listing)

    def older_page(self) -> None:
        if self.rows:
            self._before_id, self._after_id = self.rows[-1]["id"], None
            self.refresh()

    def newer_page(self) -> None:
        if self.rows:
            self._before_id, self._after_id = None, self.rows[0]["id"]
            self.refresh()

    # -- one entry, one object ---------------------------------------------------------------

    def selected(self) -> dict[str, Any] | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.rows[self.proxy.mapToSource(index).row()]

    def _show_selected(self) -> None:
        entry = self.selected()
        self._update_buttons()
        if entry is None:
            self.entry_label.setText("Select an entry to see what it changed.")
            self.before_text.clear()
            self.after_text.clear()
            return
        self.entry_label.setText(f"Entry {entry['id']}: <b>{entry['actor']}</b> — {entry['action']} "
                                 f"{entry['entity']} <b>{entry['entity_key']}</b> at {_when(entry['at'])}")
        self.before_text.setPlainText(_pretty(entry["before"]))
        self.after_text.setPlainText(_pretty(entry["after"]))

    def show_history(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        self._history = (entry["entity"], entry["entity_key"])
        self.refresh()

    def back_to_list(self) -> None:
        self._history = None
        self.refresh()

    # -- export and the chain check ---------------------------------------------------------------

    def _choose_export(self) -> None:
        choose_save_path(self, "Export the audit log", f"xlab-audit-{date.today()}.csv",
                         "CSV (*.csv);;Excel (*.xlsx)", "tables", self.export_to, self._settings)

    def export_to(self, path: str) -> None:
        """Write the filtered entries to ``path`` (.csv or .xlsx) in the background, with progress."""
        lab, flt = self._lab, self.audit_filter()
        self._task = tasks.run_task(lambda: log.export(lab.catalog, flt, path), title="Exporting the audit log",
                                    parent=self, on_finished=self._exported,
                                    on_failed=lambda exc: show_error(self, "Export", exc))

    def _exported(self, report) -> None:
        announce_saved(self, report.path)
        self.exported.emit(report)

    def verify(self) -> None:
        """Recompute the hash chain in the background; the verdict goes under the table."""
        from core.audit.chain import verify_chain

        lab = self._lab
        self.verify_button.setEnabled(False)
        self.verify_label.setText("Checking the audit log's chain…")
        self.verify_label.setStyleSheet("")
        self._task = tasks.run_task(lambda: verify_chain(lab.catalog), title="Checking the audit log",
                                    parent=self, on_finished=self._verified, on_failed=self._verify_failed)

    def _verified(self, report) -> None:
        self.verify_button.setEnabled(True)
        self.verify_label.setText(report.summary())
        self.verify_label.setStyleSheet(OK_STYLE if report.ok else BROKEN_STYLE)
        self.verify_label.setToolTip("\n".join(f"entry {b.entry_id}: {b.problem}" for b in report.breaks))
        self.verified.emit(report)

    def _verify_failed(self, exc: BaseException) -> None:
        self.verify_button.setEnabled(True)
        self.verify_label.setText("")
        show_error(self, "Verify chain", exc)

    def shutdown(self) -> None:
        """Window closing: stop an export or check still running (its file is not left half-written)."""
        if self._task is not None and self._task.running:
            self._task.cancel()
            self._task.wait(10_000)
