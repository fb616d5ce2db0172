"""Inventory: every section of the lab inventory, with YAML import and export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from app.views.area import AreaView
from app.table_model import Column, RowsModel, make_table
from core.inventory import SECTIONS, import_inventory
from core.inventory.apply import ImportReport, export_inventory, inventory_entries
from core.lab import Lab
from core.progress import Progress

RELEVANT = tuple(s.name for s in SECTIONS) + ("*",)


def import_steps(lab: Lab, path: str) -> Iterator[Progress]:
    """Import as a task: one step, but cancellable before it starts writing."""
    yield Progress(0, 1, f"Importing {Path(path).name}…")
    return import_inventory(lab.catalog, path)


class InventoryView(AreaView):
    imported = Signal(object)  # ImportReport
    loaded = Signal()
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self.tabs = QTabWidget()
        self.models: dict[str, RowsModel] = {}
        for section in SECTIONS:
            columns = [
                Column(f.name, f.name.replace("_", " ").capitalize(), (lambda v: "yes" if v else "no") if f.kind is bool else None)
                for f in section.fields
            ]
            model = RowsModel(columns, self)
            table, _ = make_table(model)
            self.models[section.name] = model
            self.tabs.addTab(table, section.name.replace("_", " ").capitalize())
        self.import_button = QPushButton("Import YAML…")
        self.import_button.clicked.connect(self._ask_import)
        self.export_button = QPushButton("Export YAML…")
        self.export_button.clicked.connect(self._ask_export)
        self.status = QLabel("")
        bar = QHBoxLayout()
        bar.addWidget(self.import_button)
        bar.addWidget(self.export_button)
        bar.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.tabs, 1)
        self._task: tasks.GeneratorTask | None = None

    def refresh(self) -> None:
        self._stale = False
        tasks.call(lambda: inventory_entries(self._lab.catalog), self._show, lambda e: show_error(self, "Could not read the inventory", e), self)

    def _show(self, entries: dict) -> None:
        for index, section in enumerate(SECTIONS):
            rows = entries.get(section.name, [])
            self.models[section.name].set_rows(rows)
            self.tabs.setTabText(index, f"{section.name.replace('_', ' ').capitalize()} ({len(rows)})")
        self.loaded.emit()

    # -- import / export ----------------------------------------------------

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import inventory", "", "YAML (*.yaml *.yml);;All files (*)")
        if path:
            self.start_import(path)

    def start_import(self, path: str) -> tasks.GeneratorTask:
        self.import_button.setEnabled(False)
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
        show_error(self, "Inventory import", exc)

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export inventory", "inventory.yaml", "YAML (*.yaml *.yml)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        def write() -> str:
            Path(path).write_text(export_inventory(self._lab.catalog), encoding="utf-8")
            return path

        tasks.call(write, lambda p: self.status.setText(f"Exported to {p}"), lambda e: show_error(self, "Export failed", e), self)
