"""Write a quota plan spec in the window: YAML text checked by core's own spec
parser, problems listed by line (click one to go there), then a draft or a
published plan through core's create_plan / publish_plan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from core.errors import InputFileError, XLabError
from core.lab import Lab
from core.progress import Progress
from core.quota.plans import PlanRef
from core.quota.spec import PlanSpec

SOURCE = "plan spec"
LINE_ROLE = Qt.ItemDataRole.UserRole

TEMPLATE = """\
# Quota plan spec: the KPIs the test set must measure and the deployment mix.
# Validate checks it; Create draft builds the plan's cells; Publish fixes it for capture planning.
name: {name}
note: ""
images_per_setup: 1          # images per setup (item x bag x pose)
defaults:                    # every class, unless it says otherwise below
  detection_rate: 0.90       # KPI the test set must measure
  half_width: 0.05           # ± of the interval
  confidence: 0.95
  max_false_alarm_rate: 0.05
  ratio_step: 1              # train:test
clean:                       # clean bags measure the false-alarm rate
  false_alarm_rate: 0.05
  half_width: 0.02
  confidence: 0.95
mix:                         # marginal weights; a dimension left out is spread evenly
  clutter: {{low: 1, medium: 2, high: 1}}
  # luggage_type: {{hard_case: 3, soft_bag: 2}}
  # scanner_model: {{...}}
  # pose: {{flat: 3, edge_on: 1}}
classes:                     # per-class changes, e.g.
  # pistol: {{detection_rate: 0.95, half_width: 0.03}}
"""


def template(name: str = "test-set") -> str:
    return TEMPLATE.format(name=name)


def spec_yaml(spec: PlanSpec) -> str:
    """``spec`` written back as the YAML a manager would have typed."""
    import yaml

    def given(values: dict) -> dict:
        return {k: v for k, v in values.items() if v is not None}

    data = {
        "name": spec.name,
        "note": spec.note,
        "images_per_setup": spec.images_per_setup,
        "defaults": given(asdict(spec.defaults)),
        "clean": given(asdict(spec.clean)),
        "mix": spec.mix,
        "classes": spec.classes,
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)


def _draft_steps(lab: Lab, spec: PlanSpec, publish: bool) -> Iterator[Progress]:
    from core.quota.plans import create_plan, publish_plan

    yield Progress(0, 2 if publish else 1, f"Building the cells of {spec.name}…")
    ref = create_plan(lab.catalog, spec)
    if publish:
        yield Progress(1, 2, f"Publishing {spec.name} v{ref.version}…")
        ref = publish_plan(lab.catalog, spec.name)
    return ref


class PlanSpecEditorDialog(QDialog):
    """Edit a plan spec as YAML; validate, create a draft, or publish."""

    validated = Signal(object)  # list of InputProblem (empty: the spec is good)
    plan_saved = Signal(object)  # core PlanRef (draft or published)

    def __init__(self, lab: Lab, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self.setWindowTitle("Quota plan spec")
        self.resize(900, 620)
        self.editor = QPlainTextEdit()
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setPlainText(text)
        self.problems = QListWidget()
        self.problems.itemActivated.connect(self._jump)
        self.problems.itemClicked.connect(self._jump)
        self.status = QLabel("Validate to check the spec; problems appear below, click one to go to its line.")
        self.status.setWordWrap(True)
        self.validate_button = QPushButton("Validate")
        self.validate_button.clicked.connect(self.validate)
        self.draft_button = QPushButton("Create draft")
        self.draft_button.setToolTip("Build the plan's quota cells as a draft (a new version if the name is published)")
        self.draft_button.clicked.connect(lambda: self.save(publish=False))
        self.publish_button = QPushButton("Publish…")
        self.publish_button.setToolTip("Build and publish: capture planning uses it; a published plan never changes")
        self.publish_button.clicked.connect(self.ask_publish)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        for button in (self.validate_button, self.draft_button, self.publish_button, self.close_button):
            button.setAutoDefault(False)  # Enter belongs to the text
        buttons = QHBoxLayout()
        buttons.addWidget(self.validate_button)
        buttons.addStretch(1)
        buttons.addWidget(self.draft_button)
        buttons.addWidget(self.publish_button)
        buttons.addWidget(self.close_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.editor)
        splitter.addWidget(self.problems)
        splitter.setSizes([460, 120])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.confirm: QMessageBox | None = None
        self._task: tasks.GeneratorTask | None = None

    # -- checking -------------------------------------------------------------

    def validate(self) -> PlanSpec | None:
        """The spec in the editor, or None with its problems listed (core's parser, on this thread: it is bounded)."""
        from core.quota.spec import parse_plan_spec

        try:
            spec = parse_plan_spec(self.editor.toPlainText().encode("utf-8"), SOURCE)
        except InputFileError as exc:
            self.show_problems(exc.problems)
            self.status.setText(f"{len(exc.problems)} problem(s): click one to go to its line.")
            self.validated.emit(exc.problems)
            return None
        self.show_problems([])
        self.status.setText(f"The spec is valid: plan '{spec.name}'.")
        self.validated.emit([])
        return spec

    def show_problems(self, problems) -> None:
        self.problems.clear()
        for problem in problems:
            line = getattr(problem, "line", None)
            message = getattr(problem, "message", str(problem))
            item = QListWidgetItem(f"line {line}: {message}" if line else message)
            item.setData(LINE_ROLE, line)
            self.problems.addItem(item)
        self._highlight([p.line for p in problems if getattr(p, "line", None)])

    def _highlight(self, lines: list[int]) -> None:
        selections = []
        for line in lines:
            block = self.editor.document().findBlockByNumber(line - 1)
            if not block.isValid():
                continue
            selection = QTextEdit.ExtraSelection()
            selection.format.setBackground(QColor(255, 220, 220))
            selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            selection.cursor = QTextCursor(block)
            selections.append(selection)
        self.editor.setExtraSelections(selections)

    def _jump(self, item: QListWidgetItem) -> None:
        line = item.data(LINE_ROLE)
        if line:
            self.go_to_line(int(line))

    def go_to_line(self, line: int) -> None:
        block = self.editor.document().findBlockByNumber(max(0, line - 1))
        cursor = QTextCursor(block)
        cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        self.editor.setTextCursor(cursor)
        self.editor.centerCursor()
        self.editor.setFocus()

    def current_line(self) -> int:
        return self.editor.textCursor().blockNumber() + 1

    # -- saving ---------------------------------------------------------------

    def ask_publish(self) -> QMessageBox | None:
        spec = self.validate()
        if spec is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Question, "Publish quota plan",
                          f"Publish plan '{spec.name}'?", QMessageBox.StandardButton.NoButton, self)
        box.setInformativeText("Capture planning will use it, and a published version never changes: "
                               "later edits become the next version.")
        publish = box.addButton("Publish", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.buttonClicked.connect(lambda button: self.save(publish=True) if button is publish else None)
        self.confirm = box
        box.open()
        return box

    def save(self, publish: bool) -> tasks.GeneratorTask | None:
        spec = self.validate()
        if spec is None:
            return None
        for button in (self.draft_button, self.publish_button):
            button.setEnabled(False)
        self.status.setText(f"{'Publishing' if publish else 'Creating a draft of'} {spec.name}…")
        self._task = tasks.run_task(lambda: _draft_steps(self._lab, spec, publish), title="Quota plan", parent=self,
                                    on_finished=self._saved, on_failed=self._failed)
        self._task.ended.connect(lambda: [b.setEnabled(True) for b in (self.draft_button, self.publish_button)])
        return self._task

    def _saved(self, ref: PlanRef) -> None:
        self.status.setText(f"{ref.name} v{ref.version}: {ref.status}.")
        self.plan_saved.emit(ref)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, InputFileError):
            self.show_problems(exc.problems)
        elif isinstance(exc, XLabError):
            self.show_problems([str(exc)])  # e.g. a class not in the inventory: no line to point at
            self.status.setText("Not saved: see the problem below.")
        else:
            show_error(self, "Quota plan", exc)
