"""Labels: the review queue by risk, the X-ray viewer on the current image, its boxes.

Keyboard first (the keys work anywhere in the area except while typing in the
class picker): Enter or A accept the selected box (no box selected: every
unreviewed box of the image), R reject, D draw a box then pick its class,
Delete delete the selected box, C re-class it, arrows move it (Shift: 10 px,
Ctrl: resize; the viewer does it and the move is saved once the keys rest),
Tab the next box, N or Space the next image, P the previous one, X dismiss the
selected finding, Ctrl+Z undo the last action, W auto window, V pseudo-colour.

Every change goes through the labels API (``core.labels``) in app.tasks' pool,
one at a time in the order pressed; the image's review sheet read back after
the write is what the view then shows. Enter only ever accepts (reversible,
a revision like any other); nothing deletes without the Delete key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.table_model import Column, RowsModel, make_table
from app.views.area import AreaView, EmptyStatePanel
from app.widgets.xray_viewer import OverlayBox, XRayImageView
from core.lab import Lab
from core.labels import review as R

# Tables whose change can alter what this view shows.
RELEVANT = ("annotations", "annotation_revisions", "image_labels", "qa_flags", "images", "threat_classes")
# Box outline per review state.
STATE_COLOURS = {"unreviewed": "#ffd400", "accepted": "#2ecc40", "rejected": "#ff4136", "corrected": "#39cccc"}
# Arrow moves are saved as one revision once the keys have rested this long.
EDIT_SETTLE_MS = 400
IMPORT_FORMATS = (("COCO JSON", "coco"), ("YOLO (txt + names / data.yaml)", "yolo"), ("Pascal VOC XML", "voc"),
                  ("CVAT for images 1.1 XML", "cvat"), ("Label Studio JSON", "labelstudio"))
FLAG_NAMES = {"box_on_clean_bag": "box on a clean bag", "box_on_negative": "box on a negative",
              "class_not_in_step": "class not the placed item's", "class_conflict": "class conflict across images",
              "missing_box": "missing box", "box_count": "more boxes than items", "box_size": "unusual box size"}
SOURCES = ("ground_truth", "scanner_report", "import", "manual", "model")

NO_LABELS = ("<b>No labels yet.</b> Import annotations — <code>xlab annotations import --format coco PATH</code> "
             "(or YOLO, Pascal VOC, CVAT, Label Studio) — or let the scanners' ground truth arrive: the boxes in "
             "their DICOS reports become labels as the images are ingested. Images of clean bags become labelled "
             "negatives by themselves.")

HELP = ("<b>Keys</b> Enter/A accept · R reject · D draw · C class · Del delete · arrows move · Tab next box · "
        "N/Space next image · P previous · X dismiss finding · Ctrl+Z undo · W auto window · V pseudo-colour")


def count(value: Any) -> str:
    return "" if value is None else f"{value:,}"


QUEUE_COLUMNS = [
    Column("name", "Image", stretch=True),
    Column("risk", "Risk", lambda v: "" if v is None else f"{v:.2f}", tooltip="Highest risk among its open QA flags"),
    Column("unreviewed", "To do", count, tooltip="Boxes not reviewed yet"),
    Column("flags", "Flags", count, tooltip="Open QA flags"),
]
BOX_COLUMNS = [
    Column("annotation_id", "#"),
    Column("class_name", "Class", stretch=True),
    Column("qa_state", "State"),
    Column("flag", "!", tooltip="The box has an open QA flag"),
]


@dataclass(frozen=True)
class ActionResult:
    """What a review action returns from the pool: how to undo it and the image as it is now."""

    message: str
    undo: list[R.UndoStep]
    review: R.ImageReview | None
    progress: R.ReviewProgress


class ClassPickerPanel(QFrame):
    """Pick a threat class by typing part of its name; Enter takes the highlighted one, Escape cancels."""

    picked = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel("")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Type to filter classes…")
        self.filter.textChanged.connect(self._filter)
        self.filter.installEventFilter(self)
        self.list = QListWidget()
        self.list.itemActivated.connect(lambda item: self.picked.emit(item.text()))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.filter)
        layout.addWidget(self.list, 1)

    def open(self, title: str, classes: list[str], preselect: str | None) -> None:
        self.title.setText(title)
        self.list.clear()
        self.list.addItems(classes)
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.blockSignals(False)
        self._filter("")
        matches = self.list.findItems(preselect or "", Qt.MatchFlag.MatchExactly) if preselect else []
        if matches:
            self.list.setCurrentItem(matches[0])
        self.show()
        self.filter.setFocus()

    def current(self) -> str | None:
        item = self.list.currentItem()
        return item.text() if item is not None and not item.isHidden() else None

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for row in range(self.list.count()):
            item = self.list.item(row)
            item.setHidden(needle not in item.text().lower())
            if first is None and not item.isHidden():
                first = item
        if self.current() is None or needle:
            self.list.setCurrentItem(first)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt API
        if watched is self.filter and event.type() == event.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                name = self.current()
                if name is not None:
                    self.picked.emit(name)
                return True
            if key == Qt.Key.Key_Escape:
                self.cancelled.emit()
                return True
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
                visible = [self.list.item(r) for r in range(self.list.count()) if not self.list.item(r).isHidden()]
                if visible:
                    at = visible.index(self.list.currentItem()) if self.list.currentItem() in visible else -1
                    step = 1 if key == Qt.Key.Key_Down else -1
                    self.list.setCurrentItem(visible[max(0, min(len(visible) - 1, at + step))])
                return True
        return super().eventFilter(watched, event)


class AnnotationImportDialog(QDialog):
    """Format, file or folder, skip bad records: runs ``core.labels.imports`` in the pool;
    problems are shown one per line."""

    imported = Signal(object)  # ImportReport

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import annotations")
        self._lab = lab
        self.format = QComboBox()
        for title, name in IMPORT_FORMATS:
            self.format.addItem(title, name)
        self.path = QLineEdit()
        self.path.setPlaceholderText("annotation file, or the folder holding the format's files")
        browse_file = QPushButton("File…")
        browse_file.clicked.connect(self._browse_file)
        browse_folder = QPushButton("Folder…")
        browse_folder.clicked.connect(self._browse_folder)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse_file)
        path_row.addWidget(browse_folder)
        self.skip_bad = QCheckBox("Skip bad records (import the rest; every problem is still listed)")
        self.problems = QPlainTextEdit()
        self.problems.setReadOnly(True)
        self.problems.setPlaceholderText("Problems found are listed here, one per line.")
        self.problems.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Annotations", path_row)
        form.addRow("", self.skip_bad)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problems, 1)
        layout.addWidget(self.buttons)
        self.resize(760, 420)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Annotation file", self.path.text(),
                                              "Annotations (*.json *.xml *.txt *.yaml *.yml);;All files (*)")
        if path:
            self.path.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of annotation files", self.path.text())
        if path:
            self.path.setText(path)

    def start(self) -> None:
        from core.labels.imports import import_labels

        path, fmt, skip = self.path.text().strip(), self.format.currentData(), self.skip_bad.isChecked()
        if not path:
            self.problems.setPlainText("Choose the annotation file or folder first.")
            return
        self.import_button.setEnabled(False)
        self.problems.setPlainText(f"Importing {path} …")
        tasks.call(lambda: import_labels(self._lab, fmt, path, skip_bad=skip), self._done, self._failed, self)

    def _done(self, report) -> None:
        self.import_button.setEnabled(True)
        counts = report.counts
        lines = [f"Imported: {counts.get('boxes_added', 0):,} boxes added, {counts.get('boxes_kept', 0):,} kept, "
                 f"{counts.get('images_matched', 0):,} images matched."]
        lines += report.problems
        self.problems.setPlainText("\n".join(lines))
        self.imported.emit(report)

    def _failed(self, exc: BaseException) -> None:
        self.import_button.setEnabled(True)
        problems = getattr(exc, "problems", None)
        if problems:
            lines = [f"Nothing was imported: {len(problems)} problem(s)."] + [str(p) for p in problems]
        else:
            lines = [f"Nothing was imported: {exc}"]
        self.problems.setPlainText("\n".join(lines))


class LabelReviewView(AreaView):
    """The review queue, the current image in the X-ray viewer, its boxes and QA flags."""

    loaded = Signal()  # the queue and counts were shown
    image_shown = Signal(int)  # an image's review sheet is shown (its pixels load in the viewer)
    action_done = Signal(str)  # a review action was written; the status line's message
    action_failed = Signal(str)
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None):
        super().__init__(parent)
        self._lab = lab
        self._loading = False
        self._review: R.ImageReview | None = None
        self._classes: list[str] = []
        self._resume_at = 0  # queue row to go on from when the shown image left the queue
        self._undo: list[tuple[str, list[R.UndoStep]]] = []
        self._actions: list[tuple[Callable[[], tuple[str, list[R.UndoStep], int | None]], bool, bool]] = []
        self._writing = 0  # actions sent and not yet back: their catalog changes are answered by them
        self._pending_edit: dict[Any, tuple[float, float, float, float]] = {}
        self._drawn: tuple[float, float, float, float] | None = None
        self._picking = ""  # "draw" or "class" while the class picker is open
        self._image_request = 0
        self._asked_image: int | None = None  # the image open_image was last asked for
        self._open_first = False  # the filters changed: open the first image of the new queue

        # -- left: filters, progress, queue, reviewers
        self.state_filter = QComboBox()
        self.state_filter.addItems([s.capitalize() for s in R.QUEUE_STATES])
        self.class_filter = QComboBox()
        self.flag_filter = QComboBox()
        self.flag_filter.addItem("Any flag", None)
        for code, name in FLAG_NAMES.items():
            self.flag_filter.addItem(name, code)
        self.source_filter = QComboBox()
        self.source_filter.addItem("Any source", None)
        for source in SOURCES:
            self.source_filter.addItem(source.replace("_", " "), source)
        for combo in (self.state_filter, self.class_filter, self.flag_filter, self.source_filter):
            combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            combo.currentIndexChanged.connect(lambda _: self._filters_changed())
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setMaximumHeight(8)
        self.queue_model = RowsModel(QUEUE_COLUMNS, self, row_colour=None)
        self.queue_table, self.queue_proxy = make_table(self.queue_model)
        self.queue_table.setObjectName("label_queue")
        self.queue_table.setSortingEnabled(False)  # the queue's order is its meaning
        self.queue_proxy.sort(-1)  # make_table sorted by the first column: back to the model's order
        # Scanner file names differ at their end (time, counter): keep it visible.
        self.queue_table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.queue_table.setWordWrap(False)  # a wrap at the name's hyphen would leave "SCN-…"
        self.queue_table.selectionModel().currentRowChanged.connect(lambda current, _: self._open_row(current.row()))
        self.queue_title = QLabel("")
        self.reviewers = QLabel("")
        self.reviewers.setWordWrap(True)
        self.reviewers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.refresh_button.clicked.connect(self.refresh)
        self.import_button = QPushButton("Import…")
        self.import_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.import_button.setToolTip("Import annotations (COCO, YOLO, Pascal VOC, CVAT, Label Studio)")
        self.import_button.clicked.connect(lambda: self.open_import())
        filters = QFormLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addRow("Queue", self.state_filter)
        filters.addRow("Class", self.class_filter)
        filters.addRow("Flag", self.flag_filter)
        filters.addRow("Source", self.source_filter)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(filters)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.progress_label)
        left_layout.addWidget(self.progress_bar)
        left_layout.addWidget(self.queue_title)
        left_layout.addWidget(self.queue_table, 1)
        left_layout.addWidget(self.reviewers)

        # -- centre: view controls, viewer, facts, flags, status line
        self.viewer = XRayImageView()
        self.viewer.box_selected.connect(self._box_selected)
        self.viewer.box_edited.connect(self._box_edited)
        self.viewer.box_drawn.connect(self._box_drawn)
        self.viewer.load_failed.connect(lambda message: self._say(f"Image not shown: {message}"))
        self.window_preset = QComboBox()
        self.window_preset.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        from core.imaging.windowing import PRESETS

        self.window_preset.addItems(list(PRESETS))
        self.window_preset.setCurrentText("auto")
        self.window_preset.textActivated.connect(self.viewer.apply_preset)
        self.pseudo = QCheckBox("Pseudo-colour")
        self.pseudo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.pseudo.toggled.connect(self._toggle_pseudo)
        self.viewer.image_loaded.connect(lambda _: self._image_loaded())
        self.image_title = QLabel("")
        self.image_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(self.image_title, 1)
        controls.addWidget(QLabel("Window"))
        controls.addWidget(self.window_preset)
        controls.addWidget(self.pseudo)
        self.facts = QLabel("")
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.flags = QListWidget()
        self.flags.setObjectName("label_flags")
        self.flags.setWordWrap(True)
        self.flags.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.flags.setMaximumHeight(90)
        self.flags.currentItemChanged.connect(lambda item, _: self._flag_chosen(item))
        self.dismiss_button = QPushButton("Dismiss finding")
        self.dismiss_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.dismiss_button.setToolTip("The labels are right: this finding is not raised again (X; cannot be undone)")
        self.dismiss_button.clicked.connect(self.dismiss_flag)
        flags_row = QHBoxLayout()
        flags_row.addWidget(self.flags, 1)
        flags_row.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.status_line = QLabel("")
        self.status_line.setObjectName("label_status")
        self.status_line.setStyleSheet("font-weight: bold")
        self.status_line.setWordWrap(True)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addLayout(controls)
        centre_layout.addWidget(self.viewer, 1)
        centre_layout.addWidget(self.facts)
        centre_layout.addLayout(flags_row)
        centre_layout.addWidget(self.status_line)

        # -- right: boxes, class picker, keys
        self.box_model = RowsModel(BOX_COLUMNS, self)
        self.box_table, self.box_proxy = make_table(self.box_model)
        self.box_table.setObjectName("label_boxes")
        self.box_table.setSortingEnabled(False)
        self.box_proxy.sort(-1)
        self.box_table.selectionModel().currentRowChanged.connect(lambda current, _: self._box_row_chosen(current.row()))
        self.picker = ClassPickerPanel()
        self.picker.picked.connect(self._class_picked)
        self.picker.cancelled.connect(self._pick_cancelled)
        self.picker.hide()
        keys = QLabel(HELP)
        keys.setWordWrap(True)
        keys.setStyleSheet("color: palette(mid)")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(QLabel("Boxes"))
        right_layout.addWidget(self.box_table, 1)
        right_layout.addWidget(self.picker, 1)
        right_layout.addWidget(keys)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(centre)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([300, 640, 250])
        left.setMinimumWidth(250)
        right.setMinimumWidth(210)
        self.empty = EmptyStatePanel(NO_LABELS)
        self.empty.add_action("Import annotations…", lambda: self.open_import())
        self.pages = QStackedWidget()
        self.pages.addWidget(splitter)
        self.pages.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.import_dialog: AnnotationImportDialog | None = None

        self._edit_timer = QTimer(self)
        self._edit_timer.setSingleShot(True)
        self._edit_timer.setInterval(EDIT_SETTLE_MS)
        self._edit_timer.timeout.connect(self._save_edits)
        self._install_keys()

    # -- keys -----------------------------------------------------------------------

    def _install_keys(self) -> None:
        keys = {
            "Return": self.accept, "Enter": self.accept, "A": self.accept, "R": self.reject, "D": self.draw,
            "Delete": self.delete, "C": self.reclass, "N": self.next_image, "Space": self.next_image,
            "P": self.previous_image, "Ctrl+Z": self.undo, "X": self.dismiss_flag,
            "W": lambda: self.viewer.apply_preset("auto"), "V": lambda: self.pseudo.toggle(),
        }
        self.shortcuts: dict[str, QShortcut] = {}
        for key, slot in keys.items():
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(lambda key=key, slot=slot: self._key(key, slot))
            self.shortcuts[key] = shortcut

    def _key(self, key: str, slot: Callable[[], None]) -> None:
        if self._picking:
            # Typing goes to the picker's filter; Enter there is a shortcut of ours, so it chooses here.
            if key in ("Return", "Enter") and self.picker.current() is not None:
                self.picker.picked.emit(self.picker.current())
            return
        slot()

    def _say(self, message: str) -> None:
        self.status_line.setText(message)

    # -- data -------------------------------------------------------------------------

    def _filter(self) -> R.QueueFilter:
        state = R.QUEUE_STATES[max(0, self.state_filter.currentIndex())]
        return R.QueueFilter(state, self.class_filter.currentData(), self.flag_filter.currentData(),
                             self.source_filter.currentData())

    def _filters_changed(self) -> None:
        self._open_first = True
        self.refresh()

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        lab, filt = self._lab, self._filter()

        def read():
            return R.queue_page(lab.catalog, filt), R.progress(lab.catalog), R.class_names(lab.catalog)

        tasks.call(read, self._show_queue, self._failed_read, self)

    def _failed_read(self, exc: BaseException) -> None:
        self._loading = False
        self._say(f"Could not read the label queue: {exc}")
        self.loaded.emit()

    def _show_queue(self, result) -> None:
        rows, progress, classes = result
        self._loading = False
        open_first, self._open_first = self._open_first, False
        self._classes = classes
        self._fill_class_filter(classes)
        self._show_progress(progress)
        labelled = progress.boxes + progress.negatives > 0
        self.pages.setCurrentIndex(0 if labelled else 1)
        # An image asked for (from another area) before the first queue read came back stays the one shown.
        shown_id = self._review.image_id if self._review is not None else self._asked_image
        old_row = self._current_row()
        for row in rows:
            row["name"] = row["rel_path"] or row["original_name"] or f"image #{row['image_id']}"
        self.queue_model.set_rows(rows)
        self.queue_title.setText(f"Queue: {len(rows):,} image(s)" + (" (first page)" if len(rows) >= R.PAGE else ""))
        at = next((n for n, r in enumerate(rows) if r["image_id"] == shown_id), None)
        if at is not None:
            self._select_row(at, load=False)
        elif (shown_id is None or open_first) and rows:
            self._select_row(0)
        else:
            self._resume_at = max(0, old_row if old_row >= 0 else self._resume_at)
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _fill_class_filter(self, classes: list[str]) -> None:
        current = self.class_filter.currentData()
        if [self.class_filter.itemData(i) for i in range(1, self.class_filter.count())] == classes:
            return
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("Any class", None)
        for name in classes:
            self.class_filter.addItem(name, name)
        self.class_filter.setCurrentIndex(max(0, self.class_filter.findData(current)) if current else 0)
        self.class_filter.blockSignals(False)

    def _show_progress(self, progress: R.ReviewProgress) -> None:
        self.progress_label.setText(
            f"{progress.reviewed:,} of {progress.boxes:,} boxes reviewed · "
            f"{progress.flagged_images:,} image(s) flagged · {progress.negatives:,} labelled negative(s)")
        self.progress_bar.setMaximum(max(progress.boxes, 1))
        self.progress_bar.setValue(progress.reviewed)
        order = ("accepted", "rejected", "corrected", "drawn", "deleted", "undone")
        lines = []
        for actor, counts in sorted(progress.by_reviewer.items(), key=lambda kv: -sum(kv[1].values())):
            done = ", ".join(f"{counts[k]:,} {k}" for k in order if counts.get(k))
            lines.append(f"<b>{actor}</b>: {done}")
        self.reviewers.setText("<b>Reviewers</b><br>" + "<br>".join(lines) if lines else "No reviews yet.")

    def on_catalog_changed(self, change) -> None:
        if self._writing and change.touches(*RELEVANT) and not change.outside:
            return  # our own action: its result updates the view
        super().on_catalog_changed(change)

    # -- queue navigation -------------------------------------------------------------

    def _current_row(self) -> int:
        index = self.queue_table.currentIndex()
        return index.row() if index.isValid() and self.queue_table.selectionModel().isSelected(index) else -1

    def _select_row(self, row: int, load: bool = True) -> None:
        if not load:
            self.queue_table.selectionModel().blockSignals(True)
        self.queue_table.selectRow(row)
        self.queue_table.setCurrentIndex(self.queue_proxy.index(row, 0))
        if not load:
            self.queue_table.selectionModel().blockSignals(False)
        self.queue_table.scrollTo(self.queue_proxy.index(row, 0))

    def next_image(self) -> None:
        self._move(1)

    def previous_image(self) -> None:
        self._move(-1)

    def _move(self, step: int) -> None:
        rows = len(self.queue_model.rows)
        if not rows:
            self._say("The queue is empty.")
            return
        current = self._current_row()
        if current < 0:  # the image shown left the queue: go on from where it was
            target = self._resume_at if step > 0 else self._resume_at - 1
        else:
            target = current + step
        if not 0 <= target < rows:
            self._say("End of the queue." if step > 0 else "Start of the queue.")
            return
        self._select_row(target)

    def _open_row(self, row: int) -> None:
        if not 0 <= row < len(self.queue_model.rows):
            return
        entry = self.queue_model.rows[row]
        self._resume_at = row
        self.open_image(entry["image_id"])
        nxt = self.queue_model.rows[row + 1] if row + 1 < len(self.queue_model.rows) else None
        if nxt is not None and nxt.get("store_path"):
            self.viewer.prefetch(self._lab.paths.store / nxt["store_path"])

    def open_image(self, image_id: int) -> None:
        """Read the image's review sheet off the GUI thread, then show it (pixels load in the viewer)."""
        self._flush_edits()
        self._image_request += 1
        self._asked_image = image_id
        request, lab = self._image_request, self._lab
        tasks.call(lambda: R.image_review(lab.catalog, image_id),
                   lambda review: self._image_read(request, review),
                   lambda exc: self._say(f"Could not read image #{image_id}: {exc}"), self)

    def _image_read(self, request: int, review: R.ImageReview) -> None:
        if request != self._image_request:
            return  # the reviewer has moved on
        facts = review.facts
        self._review = review
        self.viewer.set_image(self._lab.paths.store / facts["store_path"],
                              size=(facts["width"], facts["height"]) if facts["width"] and facts["height"] else None,
                              boxes=self._overlay(review, None))
        self._show_review(review, keep_selection=False)
        self.viewer.setFocus()
        self.image_shown.emit(review.image_id)

    def _image_loaded(self) -> None:
        self.pseudo.setEnabled(self.viewer.pseudo_colour_available())

    def _toggle_pseudo(self, on: bool) -> None:
        self.viewer.set_pseudo_colour(on)
        if on and not self.viewer.pseudo_colour():
            self._say("No pseudo-colour view: this image has no dual-energy channels.")
            self.pseudo.blockSignals(True)
            self.pseudo.setChecked(False)
            self.pseudo.blockSignals(False)

    # -- showing one image ----------------------------------------------------------------

    def _overlay(self, review: R.ImageReview, selected: Any) -> list[OverlayBox]:
        flagged = {f["annotation_id"] for f in review.flags if f["annotation_id"] is not None}
        return [OverlayBox(b.annotation_id, f"{b.class_name or b.label}{' !' if b.annotation_id in flagged else ''}",
                           b.x0, b.y0, b.x1, b.y1, STATE_COLOURS.get(b.qa_state, "#ffffff"),
                           b.annotation_id == selected)
                for b in review.labels.boxes]

    def _show_review(self, review: R.ImageReview, keep_selection: bool = True, select: Any = None) -> None:
        selected = self.selected_box_id() if keep_selection and select is None else select
        if selected is not None and all(b.annotation_id != selected for b in review.labels.boxes):
            selected = None
        self._review = review
        self.viewer.set_boxes(self._overlay(review, selected))
        facts = review.facts
        name = facts["rel_path"] or facts["original_name"]
        self.image_title.setText(f"<b>#{review.image_id}</b> {name}")
        known = [("class", facts["item_class"] or ("clean bag" if facts["step_id"] and not facts["item_barcode"]
                                                    else None)),
                 ("item", facts["item_barcode"]), ("bag", facts["bag_barcode"]),
                 ("luggage", " ".join(filter(None, (facts["luggage_type"], facts["clutter_level"])))),
                 ("pose", facts["pose"]), ("split", facts["split"]),
                 ("scanner", " ".join(filter(None, (facts["scanner"], f"({facts['scanner_model']})"
                                                    if facts["scanner_model"] else None))))]
        text = " · ".join(f"{k}: <b>{v}</b>" for k, v in known if v)
        if not facts["step_id"]:
            text += (" · " if text else "") + "no capture step: the lab does not know what this bag held"
        if review.labels.negative:
            text += " · labelled negative (no object)"
        self.facts.setText(text)
        self.flags.clear()
        for flag in review.flags:
            item = QListWidgetItem(f"⚠ {flag['risk']:.2f}  {flag['reason']}")
            item.setData(Qt.ItemDataRole.UserRole, flag)
            self.flags.addItem(item)
        if not review.flags:
            self.flags.addItem("No open QA flags.")
        self.dismiss_button.setEnabled(bool(review.flags))
        flagged = {f["annotation_id"] for f in review.flags if f["annotation_id"] is not None}
        rows = [b.as_dict() | {"class_name": b.class_name or f"{b.label} (no class)",
                               "flag": "!" if b.annotation_id in flagged else ""} for b in review.labels.boxes]
        self.box_model.set_rows(rows)
        self._select_box_row(selected)
        self._update_queue_row(review)

    def _update_queue_row(self, review: R.ImageReview) -> None:
        for n, row in enumerate(self.queue_model.rows):
            if row["image_id"] == review.image_id:
                row.update(unreviewed=len(review.unreviewed), boxes=len(review.labels.boxes), flags=len(review.flags),
                           risk=max((f["risk"] for f in review.flags), default=None))
                self.queue_model.dataChanged.emit(self.queue_model.index(n, 0),
                                                  self.queue_model.index(n, len(QUEUE_COLUMNS) - 1))

    def selected_box_id(self) -> Any:
        box = self.viewer.selected_box()
        return None if box is None else box.id

    def _select_box_row(self, box_id: Any) -> None:
        model = self.box_table.selectionModel()
        model.blockSignals(True)
        row = next((n for n, r in enumerate(self.box_model.rows) if r["annotation_id"] == box_id), None)
        if row is None:
            self.box_table.clearSelection()
        else:
            self.box_table.selectRow(row)
            self.box_table.setCurrentIndex(self.box_proxy.index(row, 0))
        model.blockSignals(False)

    def _box_selected(self, box_id: Any) -> None:
        self._select_box_row(box_id)
        if box_id is not None and self._review is not None:
            box = next((b for b in self._review.labels.boxes if b.annotation_id == box_id), None)
            if box is not None:
                self._say(f"Box #{box_id}: {box.class_name or box.label}, {box.qa_state}, from {box.source.replace('_', ' ')}")

    def _box_row_chosen(self, row: int) -> None:
        if 0 <= row < len(self.box_model.rows):
            self.viewer.select_box(self.box_model.rows[row]["annotation_id"])

    def _flag_chosen(self, item: QListWidgetItem | None) -> None:
        flag = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if flag and flag["annotation_id"] is not None:
            self.viewer.select_box(flag["annotation_id"])

    # -- actions ------------------------------------------------------------------------

    def _run(self, message: str, fn: Callable[[], tuple[str, list[R.UndoStep], int | None]],
             record_undo: bool = True, advance: bool = False) -> None:
        """Queue a write: ``fn`` runs in the pool and returns (message, undo steps, image id).
        ``advance``: a verdict; the selection goes on to the next unreviewed box."""
        self._actions.append((fn, record_undo, advance))
        self._say(message + "…")
        if self._writing == 0:
            self._next_action()

    def _next_action(self) -> None:
        if not self._actions:
            return
        fn, record_undo, advance = self._actions.pop(0)
        lab = self._lab
        self._writing += 1

        def work() -> ActionResult:
            done, undo, image_id = fn()
            review = R.image_review(lab.catalog, image_id) if image_id is not None else None
            return ActionResult(done, undo, review, R.progress(lab.catalog))

        tasks.call(work, lambda result: self._action_done(result, record_undo, advance), self._action_failed, self)

    def _action_done(self, result: ActionResult, record_undo: bool, advance: bool) -> None:
        self._writing -= 1
        if record_undo and result.undo:
            self._undo.append((result.message, result.undo))
        if result.review is not None and self._review is not None and result.review.image_id == self._review.image_id:
            self._show_review(result.review, select=self._after_select(result.review) if advance else None)
        elif result.review is not None:
            self._update_queue_row(result.review)
        self._show_progress(result.progress)
        self._say(result.message)
        self.action_done.emit(result.message)
        self._next_action()

    def _action_failed(self, exc: BaseException) -> None:
        self._writing -= 1
        self._actions.clear()  # what followed was pressed on the assumption this one worked
        message = f"Not saved: {exc}"
        self._say(message)
        self.action_failed.emit(message)
        if self._review is not None:
            self.open_image(self._review.image_id)  # show what the catalog holds

    def _after_select(self, review: R.ImageReview) -> Any:
        """Keep the selected box; after a verdict on it, go on to the next unreviewed box."""
        selected = self.selected_box_id()
        current = next((b for b in review.labels.boxes if b.annotation_id == selected), None)
        if current is None or current.qa_state == "unreviewed":
            return selected
        ids = [b.annotation_id for b in review.labels.boxes]
        after = ids[ids.index(selected) + 1:] + ids[:ids.index(selected)]
        todo = {b.annotation_id for b in review.unreviewed}
        return next((i for i in after if i in todo), selected)

    def _need_box(self, what: str) -> int | None:
        box_id = self.selected_box_id()
        if self._review is None:
            self._say("No image open: pick one in the queue.")
            return None
        if box_id is None:
            self._say(f"Select a box to {what} (Tab, or click it).")
        return box_id

    def accept(self) -> None:
        if self._review is None:
            self._say("No image open: pick one in the queue.")
            return
        box_id, image_id = self.selected_box_id(), self._review.image_id
        if box_id is None:
            if not self._review.unreviewed:
                self._say("Nothing to accept: every box of this image is reviewed. N: next image.")
                return
            self._verdict_on_image(image_id, "accepted")
        else:
            self._verdict(box_id, image_id, "accepted")

    def reject(self) -> None:
        box_id = self._need_box("reject")
        if box_id is not None:
            self._verdict(box_id, self._review.image_id, "rejected")

    def _verdict(self, box_id: int, image_id: int, state: str) -> None:
        from core.labels import annotations as A

        lab = self._lab

        def work():
            before = A.labels_box(lab.catalog, box_id)
            A.set_qa_state(lab.catalog, box_id, state)
            undo = [(box_id, before.revision_id)] if before.qa_state != state else []
            return f"Box #{box_id} {state}.", undo, image_id

        self._run(f"{'Accepting' if state == 'accepted' else 'Rejecting'} box #{box_id}", work, advance=True)

    def _verdict_on_image(self, image_id: int, state: str) -> None:
        lab = self._lab

        def work():
            undo = R.review_image(lab.catalog, image_id, state)
            return f"{len(undo)} box(es) of image #{image_id} {state}.", undo, image_id

        self._run(f"Accepting the boxes of image #{image_id}", work)

    def delete(self) -> None:
        from core.labels import annotations as A

        box_id = self._need_box("delete")
        if box_id is None:
            return
        lab, image_id = self._lab, self._review.image_id

        def work():
            before = A.labels_box(lab.catalog, box_id)
            A.delete_box(lab.catalog, box_id)
            return f"Box #{box_id} deleted (Ctrl+Z brings it back).", [(box_id, before.revision_id)], image_id

        self._run(f"Deleting box #{box_id}", work)

    def draw(self) -> None:
        if self._review is None:
            self._say("No image open: pick one in the queue.")
            return
        self.viewer.setFocus()
        # The viewer's own key for one box in draw mode; N is "next image" here, so
        # that shortcut stands aside while the key is handed over (Qt tries
        # shortcuts first for a key event sent by the program too).
        self.shortcuts["N"].setEnabled(False)
        try:
            QApplication.sendEvent(self.viewer, QKeyEvent(QKeyEvent.Type.KeyPress, Qt.Key.Key_N,
                                                          Qt.KeyboardModifier.NoModifier))
        finally:
            self.shortcuts["N"].setEnabled(True)
        self._say("Draw the box: drag on the image (Escape cancels); then pick its class.")

    def _box_drawn(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self._review is None:
            return
        self._drawn = (x0, y0, x1, y1)
        self._open_picker("draw", "Class of the new box", self._review.facts["item_class"])

    def reclass(self) -> None:
        box_id = self._need_box("re-class")
        if box_id is None:
            return
        box = next(b for b in self._review.labels.boxes if b.annotation_id == box_id)
        self._open_picker("class", f"New class of box #{box_id}", box.class_name)

    def _open_picker(self, why: str, title: str, preselect: str | None) -> None:
        self._picking = why
        self.box_table.hide()
        self.picker.open(title, self._classes, preselect)
        self._say(f"{title}: type to filter, Enter to choose, Escape to cancel.")

    def _close_picker(self) -> None:
        self._picking = ""
        self.picker.hide()
        self.box_table.show()
        self.viewer.setFocus()

    def _pick_cancelled(self) -> None:
        self._say("Drawing cancelled." if self._picking == "draw" else "Class unchanged.")
        self._drawn = None
        self._close_picker()
        if self._review is not None:
            self.viewer.set_boxes(self._overlay(self._review, self.selected_box_id()))

    def _class_picked(self, name: str) -> None:
        from core.labels import annotations as A

        why, lab = self._picking, self._lab
        self._close_picker()
        if self._review is None:
            return
        image_id = self._review.image_id
        if why == "draw" and self._drawn is not None:
            coords, self._drawn = self._drawn, None

            def work():
                box = A.add_box(lab.catalog, image_id, name, *coords)
                return f"Box #{box.annotation_id} drawn: {name}.", [(box.annotation_id, None)], image_id

            self._run(f"Drawing a {name} box", work)
        elif why == "class":
            box_id = self.selected_box_id()
            if box_id is None:
                return

            def work():
                before = A.labels_box(lab.catalog, box_id)
                after = A.edit_box(lab.catalog, box_id, class_name=name)
                undo = [(box_id, before.revision_id)] if after.revision_id != before.revision_id else []
                return f"Box #{box_id} is now {name} ({after.qa_state}).", undo, image_id

            self._run(f"Re-classing box #{box_id} as {name}", work)

    def _box_edited(self, box_id: Any, x0: float, y0: float, x1: float, y1: float) -> None:
        self._pending_edit[box_id] = (x0, y0, x1, y1)
        self._say(f"Box #{box_id} at {x0:.0f}, {y0:.0f} – {x1:.0f}, {y1:.0f} (saved when you pause)")
        self._edit_timer.start()

    def _flush_edits(self) -> None:
        if self._pending_edit:
            self._edit_timer.stop()
            self._save_edits()

    def _save_edits(self) -> None:
        from core.labels import annotations as A

        if self._review is None or not self._pending_edit:
            return
        edits, self._pending_edit = dict(self._pending_edit), {}
        lab, image_id = self._lab, self._review.image_id

        def work():
            undo = []
            for box_id, coords in edits.items():
                before = A.labels_box(lab.catalog, box_id)
                after = A.edit_box(lab.catalog, box_id, coords=coords)
                if after.revision_id != before.revision_id:
                    undo.append((box_id, before.revision_id))
            return f"Box #{', #'.join(map(str, edits))} moved (corrected).", undo, image_id

        self._run("Saving the moved box", work)

    def undo(self) -> None:
        self._flush_edits()
        if self._writing or self._actions:
            self._say("Wait for the last action to be saved, then undo.")
            return
        if not self._undo:
            self._say("Nothing to undo.")
            return
        what, steps = self._undo.pop()
        lab = self._lab

        def work():
            images = R.restore(lab.catalog, steps)
            return f"Undone: {what}", [], images[0] if images else None

        self._run(f"Undoing: {what}", work, record_undo=False)

    def dismiss_flag(self) -> None:
        from core.labels import qa

        if self._review is None or not self._review.flags:
            self._say("No open QA flag on this image.")
            return
        item = self.flags.currentItem()
        flag = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if flag is None:
            if len(self._review.flags) > 1:
                self._say("Select the finding to dismiss in the list under the image.")
                return
            flag = self._review.flags[0]
        lab, image_id = self._lab, self._review.image_id

        def work():
            qa.dismiss(lab.catalog, flag["id"])
            return f"Finding dismissed ({flag['code']}); it will not be raised again.", [], image_id

        self._run("Dismissing the finding", work, record_undo=False)

    # -- importing -------------------------------------------------------------------------

    def open_import(self) -> AnnotationImportDialog:
        self.import_dialog = AnnotationImportDialog(self._lab, self)
        self.import_dialog.imported.connect(lambda _report: self.refresh())
        self.import_dialog.open()
        return self.import_dialog

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.viewer.setFocus()

    def shutdown(self) -> None:
        self._flush_edits()
