"""Getting to a lab from the window: a new empty lab, the demo lab, another
folder; and the menus that reach every setup step without the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from core.lab import CATALOG_FILE
from core.progress import Progress


def init_lab(root: str) -> str:
    """Create (or migrate) the lab at ``root``; runs off the GUI thread."""
    from core.lab import Lab

    Lab.init(root).close()
    return root


def demo_steps(root: str) -> Iterator[Progress]:
    """The demo lab as ``xlab demo`` makes it, as a task."""
    from core.demo import create_demo_lab

    yield Progress(0, 1, "Creating the demo lab: inventory, quota plan, a first scanned batch frozen as demo-test and "
                         "demo-train, and today's capture sessions…")
    create_demo_lab(root, starter_datasets=True).close()
    return root


class NewLabDialog(QDialog):
    """Choose a folder and make an empty lab there, or the demo lab.

    ``lab_ready`` is emitted (with the folder and whether it is the demo) before
    the dialog closes, so a window can open on the lab first."""

    lab_ready = Signal(str, bool)

    def __init__(self, folder: str | Path, reason: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("XLab — choose a lab")
        self.setMinimumWidth(560)
        intro = QLabel(
            (f"<b>{reason}</b><br><br>" if reason else "")
            + "A lab is a folder holding the catalog, the image store and the scanners' drop folders.<br>"
            "Create an <b>empty lab</b> for your own inventory and quota plan, or open the "
            "<b>demo lab</b> (20 threat classes, simulated scanners) to try XLab first.")
        intro.setWordWrap(True)
        self.folder = QLineEdit(str(folder))
        browse = QPushButton("Choose folder…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(QLabel("Lab folder:"))
        where.addWidget(self.folder, 1)
        where.addWidget(browse)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.create_button = QPushButton("Create empty lab")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.create_empty)
        self.demo_button = QPushButton("Open the demo lab")
        self.demo_button.clicked.connect(self.create_demo)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.demo_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(where)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.task: tasks.GeneratorTask | None = None

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Lab folder", self.folder.text())
        if path:
            self.folder.setText(path)

    def _root(self) -> str | None:
        text = self.folder.text().strip()
        if not text:
            self.status.setText("Choose a folder for the lab first.")
            return None
        return str(Path(text).expanduser())

    def _busy(self, busy: bool) -> None:
        for button in (self.create_button, self.demo_button, self.folder):
            button.setEnabled(not busy)

    def create_empty(self) -> None:
        root = self._root()
        if root is None:
            return
        self._busy(True)
        existing = (Path(root) / CATALOG_FILE).exists()
        self.status.setText(f"{'Opening' if existing else 'Creating'} the lab at {root}…")
        tasks.call(lambda: init_lab(root), lambda r: self._ready(r, False), self._failed, self)

    def create_demo(self) -> tasks.GeneratorTask | None:
        root = self._root()
        if root is None:
            return None
        self._busy(True)
        self.status.setText(f"Creating the demo lab at {root}…")
        self.task = tasks.run_task(lambda: demo_steps(root), title="Demo lab", parent=self,
                                   on_finished=lambda r: self._ready(r, True), on_failed=self._failed)
        self.task.cancelled.connect(lambda: (self._busy(False), self.status.setText("Cancelled.")))
        return self.task

    def _ready(self, root: str, demo: bool) -> None:
        self._busy(False)
        self.lab_ready.emit(root, demo)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        self.status.setText("The lab could not be made; see the message.")
        show_error(self, "Lab", exc)


# -- the window's menus ---------------------------------------------------------


def _open_in_new_window(window: QMainWindow, root: str, demo: bool) -> None:
    from app.main import open_window
    from core.lab import Lab

    open_window(Lab.open(root), simulate=demo)
    window.close()


def ask_new_lab(window: QMainWindow) -> NewLabDialog:
    current = Path(window.lab.paths.root)
    dialog = NewLabDialog(current.parent / "new-lab", parent=window)
    dialog.lab_ready.connect(lambda root, demo: _open_in_new_window(window, root, demo))
    dialog.open()
    return dialog


def ask_open_lab(window: QMainWindow) -> None:
    path = QFileDialog.getExistingDirectory(window, "Open lab folder", str(window.lab.paths.root.parent))
    if not path:
        return
    if (Path(path) / CATALOG_FILE).exists():
        _open_in_new_window(window, path, False)
        return
    dialog = NewLabDialog(path, reason=f"There is no XLab lab at {path} yet.", parent=window)
    dialog.lab_ready.connect(lambda root, demo: _open_in_new_window(window, root, demo))
    dialog.open()


def install_menus(window: QMainWindow) -> None:
    """File, Inventory and Quotas menus: every setup step of a new lab."""
    bar = window.menuBar()

    def add(menu, text: str, slot, shortcut: str | None = None) -> QAction:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        return action

    file_menu = bar.addMenu("&File")
    add(file_menu, "New lab…", lambda: ask_new_lab(window))
    add(file_menu, "Open lab…", lambda: ask_open_lab(window), "Ctrl+O")
    file_menu.addSeparator()
    add(file_menu, "Users and roles…", window.show_users)
    add(file_menu, "Sign in as…", window.sign_in)
    file_menu.addSeparator()
    add(file_menu, "Quit", window.close, "Ctrl+Q")

    inventory = window.areas["Inventory"]
    inventory_menu = bar.addMenu("&Inventory")
    add(inventory_menu, "Import…", lambda: (window.show_area("Inventory"), inventory.ask_import()))
    add(inventory_menu, "Add entry…", lambda: (window.show_area("Inventory"), inventory.add_entry()))
    add(inventory_menu, "Export…", lambda: (window.show_area("Inventory"), inventory.ask_export()))

    quotas = window.areas["Quotas"]
    quotas_menu = bar.addMenu("&Quotas")
    add(quotas_menu, "New plan…", lambda: (window.show_area("Quotas"), quotas.new_plan()))
    add(quotas_menu, "Edit plan…", lambda: (window.show_area("Quotas"), quotas.edit_plan()))
