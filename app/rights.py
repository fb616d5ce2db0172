"""What the signed-in user's role may do, shown on the window's buttons.

Each action button that changes the catalog is gated by the permission it needs
(core.catalog.rights): for a role without it, the button stays disabled whatever its area's own
state says, and its tooltip says why and who may. Core refuses the same actions anyway; the
gate only keeps the window from offering them. The status bar shows who is signed in, with
"Sign in…" for a station several people share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QWidget,
)

from core.catalog import Catalog

# (area attribute, path to the button from it, permission)
GATES: tuple[tuple[str, str, str], ...] = (
    ("quotas", "new_button", "quotas"),
    ("quotas", "edit_button", "quotas"),
    ("inventory", "import_button", "inventory"),
    ("inventory", "add_button", "inventory"),
    ("inventory", "edit_button", "inventory"),
    ("inventory", "retire_button", "inventory"),
    ("datasets", "freeze_button", "datasets"),
    ("runs", "new_button", "runs"),
    ("runs", "cancel_button", "runs"),
    ("runs", "resume_button", "runs"),
    ("runs", "reproduce_button", "runs"),
    ("runs", "queue.button", "runs"),
    ("runs", "loop.accept_button", "quotas"),
    ("dashboards", "production.apply_button", "settings"),
)


def find_button(root: Any, path: str) -> Any:
    for part in path.split("."):
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


class Gate(QObject):
    """Keeps one button disabled while the signed-in user lacks ``permission``."""

    def __init__(self, button: QPushButton, catalog: Catalog, permission: str):
        super().__init__(button)
        self.button, self.catalog, self.permission = button, catalog, permission
        self.tooltip = button.toolTip()
        self.blocked = False  # this gate disabled the button (its area had it enabled)
        button.installEventFilter(self)
        self.apply()

    def allowed(self) -> bool:
        who = self.catalog.identity
        return who is None or who.may(self.permission)

    def apply(self) -> None:
        if self.allowed():
            self.button.setToolTip(self.tooltip)
            if self.blocked:
                self.blocked = False
                self.button.setEnabled(True)
        else:
            self.button.setToolTip(self.catalog.identity.why_not(self.permission))
            self._block()

    def _block(self) -> None:
        if self.button.isEnabled():
            self.blocked = True
            self.button.setEnabled(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.EnabledChange and self.button.isEnabled() and not self.allowed():
            self._block()  # the area enabled it for its own reasons: the role still says no
        return False


class Rights(QObject):
    """The window's gates; ``signed_in`` after someone else signs in at this station."""

    signed_in = Signal(str)

    def __init__(self, window: Any, catalog: Catalog):
        super().__init__(window)
        self.window, self.catalog = window, catalog
        self.gates: dict[int, Gate] = {}

    def install(self) -> None:
        """Gate every button of :data:`GATES` that exists now (areas build some when first shown)."""
        for area, path, permission in GATES:
            button = find_button(getattr(self.window, area, None), path)
            if button is not None and id(button) not in self.gates:
                self.gates[id(button)] = Gate(button, self.catalog, permission)

    def refresh(self, reenable: Callable[[], None]) -> None:
        """After a sign-in: each gate again; ``reenable`` lets the areas set their buttons anew."""
        for gate in self.gates.values():
            gate.apply()
        reenable()

    def label(self) -> str:
        who = self.catalog.identity
        if who is None or who.role is None:
            return "Open lab (no users set up)"
        return f"Signed in: {who.name} ({who.title})"


class SignInDialog(QDialog):
    """A user's name and PIN (on a server catalog: their password), for a shared station."""

    def __init__(self, parent: QWidget | None = None, server: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Sign in")
        self.setMinimumWidth(440)
        self.name = QLineEdit()
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020")
        form = QFormLayout(self)
        form.addRow(QLabel("Sign in as another user of this lab. Your rights follow your role."))
        form.addRow("User", self.name)
        form.addRow("Password" if server else "PIN", self.pin)
        form.addRow(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
