"""The Runs area's dialogs and the lines it says about this machine: the new-run dialog, the
comparison of two runs, whether training is installed, and what the GPU probe found.

Nothing here imports torch: whether it is installed is asked of ``importlib`` (no import), the
probe runs in a separate process (:mod:`core.runs.probe`), and the run itself is queued through
:func:`core.runs.records.create_run` on the pool thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from app.table_model import Column, RowsModel, make_table
from core.errors import XLabError
from core.lab import Lab

INSTALL_HINT = "pip install -e '.[train]'"
TRAINING_MISSING = (f"Training is not installed: {INSTALL_HINT} (PyTorch is left out of the base install; "
                    "or install the XLab trainer bundle). Runs can still be listed, compared and read.")
# The model offered first on a machine without a GPU: it trains on a CPU in minutes.
CPU_MODEL = "retinanet_tiny"
WARNING_STYLE = "color: #a05a00; font-weight: bold"
ERROR_STYLE = "color: #b02020; font-weight: bold"


def pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def when(value: Any) -> str:
    return "" if not value else str(value).replace("T", " ")[:16]


def training_missing(modules: tuple[str, ...] | None = None) -> str | None:
    """Why runs cannot start here, or None. From source: a module of ``modules`` is not installed (asked
    of the import system without importing it, so the window never loads torch). In the offline bundle
    (or with ``$XLAB_TRAINER``), torch is in the trainer bundle: core's check says whether it is there."""
    from core.errors import RunError
    from core.runs.queue import bundled, missing_training_modules, require_torch

    if bundled():
        try:
            require_torch()
        except RunError as exc:
            return f"Training is not installed: {exc}. Runs can still be listed, compared and read."
        return None
    missing = missing_training_modules(*([modules] if modules else []))
    return f"{TRAINING_MISSING} Missing: {', '.join(missing)}." if missing else None


def probe_summary(info: dict[str, Any]) -> tuple[str, str]:
    """The GPU probe's answer as one line and its style ("" for plain, a warning or an error style)."""
    if info.get("error"):
        return info["error"], ERROR_STYLE
    driver = info.get("driver") or "—"
    cuda = info.get("cuda") or "—"
    devices = info.get("devices") or []
    if devices:
        gpus = "; ".join(f"GPU {d.get('index', n)}: {d['name']}, {d['memory_mb']:,} MB" for n, d in enumerate(devices))
        return f"{gpus} — driver {driver}, CUDA {cuda}, torch {info.get('torch')}", ""
    return (f"No GPU: runs go to the CPU ({info.get('cpu_threads') or '?'} threads), many times slower — fine for "
            f"the small '{CPU_MODEL}' model; torch {info.get('torch')}", WARNING_STYLE)


def cpu_estimate_line(model: str, images: int, epochs: int, image_size: int) -> str:
    """The warning shown before queueing a training run that will go to the CPU."""
    from core.training.probe import cpu_estimate_s

    minutes = max(1, round(cpu_estimate_s(model, images, epochs, image_size) / 60))
    return (f"No GPU here: this run goes to the CPU, about {minutes} min ({model}, {images:,} train images × "
            f"{epochs} epochs at {image_size} px). A GPU workstation runs it many times faster.")


# -- new run ----------------------------------------------------------------------------------------


class NewRunDialog(QDialog):
    """What to run: train or evaluate, the model, the frozen versions, the main parameters.
    ``Queue`` creates the run (pool thread) and emits ``created`` with its record."""

    created = Signal(object, bool)  # the run's record, whether to start the queue now

    def __init__(self, lab: Lab, versions: list[dict[str, Any]], finished_runs: list[dict[str, Any]],
                 probe: dict[str, Any] | None, parent: QWidget | None = None):
        from core.training.models import MODELS
        from core.training.params import DEFAULTS

        super().__init__(parent)
        self._lab = lab
        self._versions = versions
        self._probe = probe or {}
        self._busy = False
        self.setWindowTitle("New run")
        self.setMinimumWidth(760)  # the model's description on one or two lines, never clipped
        self.train_kind = QRadioButton("Train a detector on a frozen train set, then evaluate it on its test set")
        self.eval_kind = QRadioButton("Evaluate a model (a finished run's, or a weights file) on a frozen test set")
        self.train_kind.setChecked(True)
        self.model = QComboBox()
        for name, description in MODELS.items():
            self.model.addItem(name, name)
            self.model.setItemData(self.model.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        no_gpu = not self._probe.get("devices")
        if no_gpu and self.model.findData(CPU_MODEL) >= 0:
            self.model.setCurrentIndex(self.model.findData(CPU_MODEL))
        self.model_note = QLabel("")
        self.model_note.setWordWrap(True)
        self.model_note.setStyleSheet("color: #555")
        self.model_note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.train = QComboBox()
        self.test = QComboBox()
        self.test.addItem("the train set's own test set", None)
        for v in versions:
            if v["rule"] == "test":
                self.test.addItem(v["ref"], v["ref"])
        self.source_run = QComboBox()
        self.source_run.addItem("none: a weights file", None)
        for r in finished_runs:
            self.source_run.addItem(f"run {r['id']}: {r['model']} on {r['train'] or r['test']}", r["id"])
        self.epochs = self._spin(1, 10_000, DEFAULTS["epochs"])
        self.image_size = self._spin(32, 8192, DEFAULTS["image_size"], " px")
        self.image_size.setSingleStep(32)
        self.batch_size = self._spin(1, 4096, DEFAULTS["batch_size"])
        if no_gpu:
            self.image_size.setValue(256)
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("new (recorded with the run)")
        self.device = QComboBox()
        for text, key in (("auto (the GPU if there is one)", "auto"), ("GPU (cuda)", "cuda"), ("CPU", "cpu")):
            self.device.addItem(text, key)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("none (train from scratch)")
        browse = QPushButton("Browse…")
        browse.setAutoDefault(False)
        browse.clicked.connect(self._browse)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(browse)
        self.note = QLineEdit()
        self.note.setPlaceholderText("why this run (kept with its record)")
        self.start_now = QCheckBox("Start the queue once it is queued")
        self.start_now.setChecked(True)
        form = QFormLayout()
        form.addRow("Kind", self.train_kind)
        form.addRow("", self.eval_kind)
        form.addRow("Model", self.model)
        form.addRow("", self.model_note)
        form.addRow("Train set", self.train)
        form.addRow("Test set", self.test)
        form.addRow("Model of run", self.source_run)
        form.addRow("Weights file", weights_row)
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.image_size)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("Note", self.note)
        form.addRow("", self.start_now)
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        self.estimate.setStyleSheet(WARNING_STYLE)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.queue_button = buttons.addButton("Queue", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.train_kind.toggled.connect(lambda _on: self._kind_changed())
        for box in (self.model, self.train, self.device):
            box.currentIndexChanged.connect(lambda _i: self._update_estimate())
        for spin in (self.epochs, self.image_size):
            spin.valueChanged.connect(lambda _v: self._update_estimate())
        self._kind_changed()

    @staticmethod
    def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        spin.setGroupSeparatorShown(True)
        return spin

    @property
    def kind(self) -> str:
        return "train" if self.train_kind.isChecked() else "eval"

    def _kind_changed(self) -> None:
        train = self.kind == "train"
        self.train.clear()
        if not train:
            self.train.addItem("none (a fixed threshold, no validation split)", None)
        for v in self._versions:
            if v["rule"] == "train":
                self.train.addItem(f"{v['ref']} ({v.get('train') or 0:,} train, "
                                   f"{v.get('validation') or 0:,} validation)", v["ref"])
        for w in (self.epochs, self.batch_size):
            w.setEnabled(train)
        self.source_run.setEnabled(not train)
        self.weights.setPlaceholderText("none (train from scratch)" if train else "the state_dict file to evaluate")
        self.queue_button.setEnabled(not train or self.train.count() > 0)
        self._update_estimate()

    def _train_images(self) -> int:
        ref = self.train.currentData()
        version = next((v for v in self._versions if v["ref"] == ref), None)
        return int(version.get("train") or 0) if version else 0

    def _update_estimate(self) -> None:
        from core.training.models import MODELS

        note = MODELS.get(self.model.currentData(), "")
        if self.kind == "train" and not self.train.count():
            note = "No frozen train set yet: freeze one in Datasets first."
        self.model_note.setText(note)
        on_cpu = self.device.currentData() == "cpu" or (not self._probe.get("devices") and not self._probe.get("error"))
        if self.kind != "train" or not on_cpu or not self._probe:
            self.estimate.setText("")
            return
        self.estimate.setText(cpu_estimate_line(self.model.currentData(), self._train_images(), self.epochs.value(),
                                                self.image_size.value()))

    def _browse(self) -> QFileDialog:
        dialog = QFileDialog(self, "Weights file (a PyTorch state_dict)", str(self._lab.paths.root),
                             "PyTorch weights (*.pt *.pth);;All files (*)")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.weights.setText)
        dialog.open()
        return dialog

    def request(self):  # -> core.runs.records.RunRequest
        """The run asked for (raises XLabError on a seed that is not a whole number, or an evaluation
        that names no test set or no model)."""
        from core.runs.records import RunRequest

        seed_text = self.seed.text().strip()
        if seed_text and not seed_text.isdigit():
            raise XLabError(f"seed '{seed_text}' is not a whole number; leave it empty for a new one")
        params: dict[str, Any] = {"image_size": self.image_size.value(), "device": self.device.currentData()}
        if self.kind == "train":
            params.update(epochs=self.epochs.value(), batch_size=self.batch_size.value())
        if seed_text:
            params["seed"] = int(seed_text)
        weights = self.weights.text().strip() or None
        if self.kind == "eval" and not self.train.currentData() and not self.test.currentData():
            raise XLabError("an evaluation needs a test set: choose one, or a train set whose own test set is used")
        if self.kind == "eval" and self.source_run.currentData() is None and not weights:
            raise XLabError("choose the model to evaluate: a finished run's, or a weights file")
        return RunRequest(self.kind, self.model.currentData(), train=self.train.currentData(),
                          test=self.test.currentData(), params=params,
                          weights=str(Path(weights).expanduser()) if weights else None,
                          source_run=self.source_run.currentData() if self.kind == "eval" else None,
                          note=self.note.text().strip())

    def submit(self) -> None:
        """Queue the run off the GUI thread (its manifests are written as it is created)."""
        from core.runs.records import create_run

        if self._busy:
            return
        try:
            request = self.request()
        except XLabError as exc:
            show_error(self, "New run", exc)
            return
        self._busy = True
        self.queue_button.setEnabled(False)
        self.status.setText("Queueing: writing the run's manifests from the frozen versions…")
        lab = self._lab
        tasks.call(lambda: create_run(lab, request), self._created, self._failed, self)

    def _created(self, run: dict[str, Any]) -> None:
        self._busy = False
        self.created.emit(run, self.start_now.isChecked())
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._busy = False
        self.queue_button.setEnabled(True)
        self.status.setText("")
        show_error(self, "New run", exc)


# -- compare ------------------------------------------------------------------------------------------


def _delta(row: dict[str, Any], key: str) -> float | None:
    a, b = row.get(f"{key}_a"), row.get(f"{key}_b")
    return None if a is None or b is None else b - a


def _signed(value: Any) -> str:
    return "—" if value is None else f"{100 * value:+.1f}"


COMPARE_COLUMNS = [
    Column("class_name", "Class", stretch=True),
    Column("pd_a", "Pd A", pct), Column("pd_b", "Pd B", pct),
    Column("pd_delta", "Pd B−A (pts)", _signed, tooltip="Change of the detection rate, in percentage points"),
    Column("far_a", "False alarms A", pct), Column("far_b", "False alarms B", pct),
    Column("ap50_a", "AP50 A", pct), Column("ap50_b", "AP50 B", pct),
    Column("ap50_delta", "AP50 B−A (pts)", _signed),
]


def compare_lines(c: dict[str, Any]) -> list[str]:
    """The two runs and their dataset versions' diff, as lines of rich text."""
    lines = []
    for side in ("a", "b"):
        r = c[side]
        coco = (r.get("metrics") or {}).get("coco") or {}
        lines.append(f"<b>{side.upper()}</b>: run {r['id']} ({r['kind']}, {r['state']}) {r['model']} on "
                     f"{r['train'] or '—'} / {r['test']}, seed {r['seed']}, AP50 {pct(coco.get('AP50'))}, "
                     f"device {r['device'] or '—'}")
    for split, d in c["datasets"].items():
        if d.get("same"):
            lines.append(f"{split.capitalize()} set: both on {d['from']}")
        else:
            lines.append(f"{split.capitalize()} set: {d['from']} → {d['to']}: {d['added']:,} images added, "
                         f"{d['removed']:,} removed, {d['labels_changed']:,} with changed labels")
    if not c["classes"]:
        lines.append("Neither run has test results yet.")
    return lines


class CompareRunsDialog(QDialog):
    """Two runs side by side: per-class figures and the diff of their dataset versions (pool thread)."""

    shown = Signal()

    def __init__(self, lab: Lab, a: int, b: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Compare run {a} (A) with run {b} (B)")
        self.resize(1000, 560)
        self.comparison: dict[str, Any] | None = None
        self.summary = QLabel(f"Comparing run {a} with run {b}…")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model = RowsModel(COMPARE_COLUMNS, self)
        self.table, _ = make_table(self.model)
        self.table.setObjectName("compare_classes")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        from core.runs.records import compare

        tasks.call(lambda: compare(lab, a, b), self._show, lambda e: show_error(self, "Compare runs", e), self)

    def _show(self, c: dict[str, Any]) -> None:
        self.comparison = c
        self.summary.setText("<br>".join(compare_lines(c)))
        self.model.set_rows([{**r, "pd_delta": _delta(r, "pd"), "ap50_delta": _delta(r, "ap50")}
                             for r in c["classes"]])
        self.shown.emit()
