"""File ▸ Users and roles…: the lab's users, their roles and PINs (administrators change them)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.lab import Lab
from core.users import ROLE_SUMMARY, ROLE_TITLES, ROLES

COLUMNS = ("User", "Role", "Name", "PIN", "State", "Added by")
ROLE_CHOICES = tuple((role, ROLE_TITLES[role][:1].upper() + ROLE_TITLES[role][1:]) for role in ROLES)


class UserForm(QDialog):
    """A new user (name, role, full name, PIN), or a user's changes (role, full name, new PIN)."""

    def __init__(self, parent: QWidget | None, user: dict[str, Any] | None = None, server: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Change user" if user else "Add user")
        self.name = QLineEdit(user["name"] if user else "")
        self.name.setReadOnly(user is not None)
        self.role = QComboBox()
        for value, text in ROLE_CHOICES:
            self.role.addItem(text, value)
        if user:
            self.role.setCurrentIndex(self.role.findData(user["role"]))
        self.full_name = QLineEdit(user["full_name"] if user else "")
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText(("password of their login" if server else "digits, for a shared station")
                                       + (" (empty: unchanged)" if user else ""))
        form = QFormLayout(self)
        form.addRow("Login name", self.name)
        form.addRow("Role", self.role)
        form.addRow("Full name", self.full_name)
        form.addRow("Password" if server else "PIN", self.secret)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class UsersDialog(QDialog):
    """The users of the lab. Who may not change them (all but administrators, in a lab with users)
    sees the list and why the buttons are off."""

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self.lab = lab
        self.server = lab.catalog.dialect == "postgresql"
        self.setWindowTitle("Users and roles")
        self.resize(720, 420)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.add_button = QPushButton("Add user…")
        self.change_button = QPushButton("Change…")
        self.disable_button = QPushButton("Disable")
        self.add_button.clicked.connect(lambda _=False: self.add_user())
        self.change_button.clicked.connect(lambda _=False: self.change_user())
        self.disable_button.clicked.connect(lambda _=False: self.toggle_disabled())
        row = QHBoxLayout()
        for button in (self.add_button, self.change_button, self.disable_button):
            row.addWidget(button)
        row.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(close)
        self.users: list[dict[str, Any]] = []
        self.form: UserForm | None = None
        self.load()

    # -- reading -----------------------------------------------------------------------------------

    def load(self) -> None:
        from core.users import list_users

        self.users = list_users(self.lab)
        self.table.setRowCount(len(self.users))
        for r, u in enumerate(self.users):
            values = (u["name"], u["role_title"], u["full_name"], "yes" if u["has_pin"] else "",
                      "disabled" if u["disabled"] else "active", u["added_by"])
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(value))
        who = self.lab.catalog.identity
        if not self.users:
            self.note.setText("No users yet: the lab is open, anyone may do anything. Add its first administrator "
                              "(your own login) to give each person a role.")
        elif who is not None and not who.may("users"):
            self.note.setText(who.why_not("users"))
        else:
            self.note.setText(ROLE_SUMMARY)
        self._update_buttons()

    def selected(self) -> dict[str, Any] | None:
        rows = self.table.selectionModel().selectedRows()
        return self.users[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        who = self.lab.catalog.identity
        may = who is None or who.may("users")
        user = self.selected()
        self.add_button.setEnabled(may)
        self.change_button.setEnabled(may and user is not None)
        self.disable_button.setEnabled(may and user is not None)
        self.disable_button.setText("Enable" if user and user["disabled"] else "Disable")
        tip = "" if may else who.why_not("users")
        for button in (self.add_button, self.change_button, self.disable_button):
            button.setToolTip(tip)

    # -- changing ----------------------------------------------------------------------------------

    def _do(self, change) -> bool:  # noqa: ANN001 - a callable changing the users
        from core.errors import XLabError

        try:
            change()
        except XLabError as exc:
            self.message.setText(str(exc))
            return False
        self.message.setText("")
        self.load()
        return True

    def add_user(self) -> UserForm:
        from core.users import add_user

        form = self.form = UserForm(self, server=self.server)
        if not self.users:
            from core.users import login_name

            form.name.setText(login_name())
            form.role.setCurrentIndex(form.role.findData("administrator"))

        def accepted() -> None:
            secret = form.secret.text() or None
            self._do(lambda: add_user(self.lab, form.name.text(), form.role.currentData(),
                                      full_name=form.full_name.text(), pin=None if self.server else secret,
                                      password=secret if self.server else None))

        form.accepted.connect(accepted)
        form.open()
        return form

    def change_user(self) -> UserForm | None:
        from core.users import change_user

        user = self.selected()
        if user is None:
            return None
        form = self.form = UserForm(self, user, server=self.server)

        def accepted() -> None:
            secret = form.secret.text() or None
            self._do(lambda: change_user(self.lab, user["name"], role=form.role.currentData(),
                                         full_name=form.full_name.text(), pin=None if self.server else secret,
                                         password=secret if self.server else None))

        form.accepted.connect(accepted)
        form.open()
        return form

    def toggle_disabled(self) -> None:
        from core.users import change_user

        user = self.selected()
        if user is not None:
            self._do(lambda: change_user(self.lab, user["name"], disabled=not user["disabled"]))
