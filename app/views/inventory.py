"""Inventory: every section of the lab inventory, with YAML import and export,
and entries added, edited and (threat classes) retired one at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import announce_saved, choose_save_path, show_error
from app.views.area import AreaView, EmptyStatePanel
from app.views.inventory_entry import InventoryEntryDialog, field_title
from app.table_model import Column, RowsModel, make_table, size_columns
from core.errors import InputFileError
from core.inventory import SECTIONS, import_inventory
from core.inventory.apply import ImportReport, export_inventory, inventory_entries
from core.inventory.sections import SECTION_BY_NAME, Field, Section
from core.lab import Lab
from core.progress import Progress

RELEVANT = tuple(s.name for s in SECTIONS)

EMPTY_MESSAGE = ("<b>No inventory yet</b> — import your inventory file (YAML), or add entries one by one, "
                 "starting with a threat family.")


def import_steps(lab: Lab, path: str) -> Iterator[Progress]:
    """Import as a task: one step, but cancellable before it starts writing."""
    yield Progress(0, 1, f"Importing {Path(path).name}…")
    return import_inventory(lab.catalog, path)


def _tab_title(section: Section) -> str:
    return section.name.replace("_", " ").capitalize()


def _stretch(section: Section, rows: list[dict[str, Any]]) -> str:
    """The field that takes the width left over: descriptions if any is written,
    else drop folders, else the name (never a column that is empty)."""
    names = [f.name for f in section.fields]
    if "description" in names and any(r.get("description") for r in rows):
        return "description"
    return "drop_folder" if "drop_folder" in names else section.key


def _column(section: Section, spec: Field) -> Column:
    if spec.kind is bool:
        fmt = (lambda v: "active" if v else "retired") if spec.name == "active" else (lambda v: "yes" if v else "no")
    elif spec.kind is float:
        fmt = lambda v: "" if v is None else f"{v:g}"  # noqa: E731 - a formatter
    else:
        fmt = None
    return Column(spec.name, field_title(spec.name), fmt, stretch=spec.name == _stretch(section, []))


class InventoryView(AreaView):
    imported = Signal(object)  # ImportReport
    entry_saved = Signal(object)  # ImportReport of one entry
    loaded = Signal()
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self.entries: dict[str, list[dict[str, Any]]] = {}
        self.tabs = QTabWidget()
        self.models: dict[str, RowsModel] = {}
        self.tables: dict[str, QTableView] = {}
        for section in SECTIONS:
            model = RowsModel([_column(section, f) for f in section.fields], self)
            table, _ = make_table(model)
            table.setObjectName(f"inventory-{section.name}")
            table.doubleClicked.connect(lambda _index: self.edit_selected())
            table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
            self.models[section.name] = model
            self.tables[section.name] = table
            self.tabs.addTab(table, _tab_title(section))
        self.tabs.currentChanged.connect(lambda _i: self._update_buttons())

        self.import_button = QPushButton("Import inventory…")
        self.import_button.setToolTip("Create and update entries from an inventory YAML file (all or nothing)")
        self.import_button.clicked.connect(self.ask_import)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self.ask_export)
        self.add_button = QPushButton("Add…")
        self.add_button.clicked.connect(lambda: self.add_entry())
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(self.edit_selected)
        self.retire_button = QPushButton("Retire class")
        self.retire_button.setToolTip("A retired class keeps its items, images and history; new quota plans leave it out")
        self.retire_button.clicked.connect(self.toggle_retired)
        self.status = QLabel("")
        bar = QHBoxLayout()
        for button in (self.import_button, self.export_button, self.add_button, self.edit_button, self.retire_button):
            bar.addWidget(button)
        bar.addWidget(self.status, 1)

        # A refused import: its problems one per line, until dismissed.
        self.problems = QListWidget()
        self.problems.setMaximumHeight(150)
        self.problems_title = QLabel("")
        self.problems_title.setStyleSheet("color: #b00020; font-weight: bold")
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self._hide_problems)
        problems_head = QHBoxLayout()
        problems_head.addWidget(self.problems_title, 1)
        problems_head.addWidget(dismiss)
        self.problems_box = QWidget()
        p_layout = QVBoxLayout(self.problems_box)
        p_layout.setContentsMargins(0, 0, 0, 0)
        p_layout.addLayout(problems_head)
        p_layout.addWidget(self.problems)
        self.problems_box.hide()

        self.empty = EmptyStatePanel(EMPTY_MESSAGE)
        self.empty.add_action("Import inventory…", self.ask_import)
        self.empty.add_action("Add threat family…", lambda: self.add_entry("threat_families"))
        self.pages = QStackedWidget()
        self.pages.addWidget(self.tabs)
        self.pages.addWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.problems_box)
        layout.addWidget(self.pages, 1)
        self._task: tasks.GeneratorTask | None = None
        self._update_buttons()

    def refresh(self) -> None:
        self._stale = False
        tasks.call(lambda: inventory_entries(self._lab.catalog), self._show, lambda e: show_error(self, "Could not read the inventory", e), self)

    def _show(self, entries: dict) -> None:
        self.entries = entries
        for index, section in enumerate(SECTIONS):
            rows = entries.get(section.name, [])
            model = self.models[section.name]
            stretch = _stretch(section, rows)
            model.columns = [replace(c, stretch=c.key == stretch) for c in model.columns]
            model.set_rows(rows)
            size_columns(self.tables[section.name], model.columns)
            self.tabs.setTabText(index, f"{_tab_title(section)} ({len(rows)})")
        empty = not any(entries.get(s.name) for s in SECTIONS)
        self.pages.setCurrentWidget(self.empty if empty else self.tabs)
        self._update_buttons()
        self.loaded.emit()

    @property
    def is_empty(self) -> bool:
        return self.pages.currentWidget() is self.empty

    # -- one entry at a time ------------------------------------------------

    def current_section(self) -> Section:
        return SECTIONS[self.tabs.currentIndex()]

    def selected_entry(self) -> dict[str, Any] | None:
        section = self.current_section()
        table = self.tables[section.name]
        rows = table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.models[section.name].rows[table.model().mapToSource(rows[0]).row()]

    def _update_buttons(self) -> None:
        section = self.current_section()
        selected = self.selected_entry()
        self.add_button.setText(f"Add {section.label}…")
        self.edit_button.setEnabled(selected is not None and not self.is_empty)
        is_class = section.name == "threat_classes"
        self.retire_button.setVisible(is_class)
        self.retire_button.setEnabled(is_class and selected is not None)
        self.retire_button.setText("Reactivate class" if selected and is_class and not selected.get("active", True)
                                   else "Retire class")

    def add_entry(self, section_name: str | None = None) -> InventoryEntryDialog:
        section = self.current_section() if section_name is None else SECTION_BY_NAME[section_name]
        return self._open_editor(section, None)

    def edit_selected(self) -> InventoryEntryDialog | None:
        selected = self.selected_entry()
        if selected is None:
            self.status.setText("Select an entry to edit")
            return None
        return self._open_editor(self.current_section(), selected)

    def _open_editor(self, section: Section, values: dict[str, Any] | None) -> InventoryEntryDialog:
        dialog = InventoryEntryDialog(self._lab, section, self.entries, values, self)
        dialog.saved.connect(lambda report, s=section, v=values: self._entry_saved(report, s, v is None))
        dialog.open()
        return dialog

    def _entry_saved(self, report: ImportReport, section: Section, created: bool) -> None:
        self.status.setText(f"{section.label.capitalize()} {'added' if created else 'saved'}"
                            if report.changed else f"{section.label.capitalize()}: no changes")
        self.entry_saved.emit(report)

    def toggle_retired(self) -> None:
        from core.inventory.edit import set_class_active

        selected = self.selected_entry()
        if selected is None or self.current_section().name != "threat_classes":
            return
        name, active = selected["name"], not selected.get("active", True)
        tasks.call(lambda: set_class_active(self._lab.catalog, name, active),
                   lambda report: self._entry_saved(report, self.current_section(), False),
                   lambda e: show_error(self, "Threat class", e), self)
        self.status.setText(f"{'Reactivating' if active else 'Retiring'} {name}…")

    # -- import / export ----------------------------------------------------

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import inventory", "", "YAML (*.yaml *.yml);;All files (*)")
        if path:
            self.start_import(path)

    def start_import(self, path: str) -> tasks.GeneratorTask:
        self.import_button.setEnabled(False)
        self._hide_problems()
        self.status.setText(f"Importing {Path(path).name}…")
        self._task = tasks.run_task(
            lambda: import_steps(self._lab, path), title="Importing inventory", parent=self,
            on_finished=self._imported, on_failed=self._import_failed,
        )
        self._task.ended.connect(lambda: self.import_button.setEnabled(True))
        return self._task

    def _imported(self, report: ImportReport) -> None:
        created = sum(r.created for r in report.sections.values())
        updated = sum(r.updated for r in report.sections.values())
        self.status.setText(f"Imported {Path(report.source).name}: {created} created, {updated} updated"
                            if report.changed else f"{Path(report.source).name}: no changes")
        self.imported.emit(report)

    def _import_failed(self, exc: BaseException) -> None:
        self.status.setText("Import refused; nothing was changed")
        if isinstance(exc, InputFileError):
            self.problems.clear()
            self.problems.addItems([str(p) for p in exc.problems])
            self.problems_title.setText(f"Import refused — {len(exc.problems)} problem(s), nothing was changed. "
                                        "Fix the file and import it again.")
            self.problems_box.show()
        show_error(self, "Inventory import", exc)

    def _hide_problems(self) -> None:
        self.problems_box.hide()
        self.problems.clear()

    def ask_export(self) -> None:
        choose_save_path(self, "Export inventory", "inventory.yaml", "YAML (*.yaml *.yml)", "inventory", self.export_to)

    def export_to(self, path: str) -> None:
        def write() -> str:
            Path(path).write_text(export_inventory(self._lab.catalog), encoding="utf-8")
            return path

        def written(p: str) -> None:
            self.status.setText(f"Exported to {p}")
            announce_saved(self, p)

        tasks.call(write, written, lambda e: show_error(self, "Export failed", e), self)
