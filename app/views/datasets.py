"""Datasets: the frozen dataset versions, their lineage, label distribution,
the diff between two versions, the freeze wizard and the export.

Everything goes through ``core.datasets`` (the same calls as ``xlab dataset``),
off the GUI thread: reads and the freeze through app.tasks' pool, the export as
a generator task with a progress dialog whose Cancel leaves no half-written
folder. The freeze wizard previews the freeze with the core's dry run (counts
per class and subset, refusals, near-duplicates, cells below target) before
the user confirms; the confirmation has Cancel as default, since a frozen
version can never be changed or removed. The charts (pyqtgraph) are built
when the area is first shown, to keep start-up fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import SAVE_FOLDERS_KEY, announce_saved, confirm_destructive, save_folder, show_error
from app.table_model import Column, RowsModel, make_table
from app.views.area import AreaView, EmptyStatePanel
from core.errors import XLabError
from core.lab import Lab

RELEVANT = ("dataset_versions", "quota_plans")
FORMATS = (("COCO JSON", "coco"), ("YOLO (txt + data.yaml)", "yolo"), ("Pascal VOC XML", "voc"),
           ("CVAT for images 1.1 XML", "cvat"), ("Label Studio JSON", "labelstudio"))
SUBSETS = ("test", "train", "validation")
EXPORT_KIND = "datasets"  # the folder the export dialog remembers

NO_VERSIONS = ("<b>No dataset version yet.</b> Freeze the test set of the published quota plan first: it takes the "
               "plan's test images whose labels passed review. Train sets are then drawn as k:1 clones of its mix.")


def count(value: Any) -> str:
    return "" if value is None else f"{value:,}"


def when(value: Any) -> str:
    return "" if not value else str(value).replace("T", " ")[:16]


VERSION_COLUMNS = [
    Column("ref", "Version", stretch=True),
    Column("rule", "Rule"),
    Column("test", "Test", count, tooltip="Images in the test subset"),
    Column("train", "Train", count, tooltip="Images in the train subset"),
    Column("validation", "Validation", count, tooltip="Images in the validation subset (carved from train)"),
    Column("boxes", "Boxes", count),
    Column("parent", "From", tooltip="The version it was derived from"),
    Column("frozen_by", "Frozen by"),
    Column("frozen_at", "Frozen", when),
    Column("hash", "Hash", tooltip="First 12 characters of the content hash"),
]
CLASS_COLUMNS = [Column("class_name", "Class", stretch=True), Column("subset", "Subset"),
                 Column("images", "Images", count), Column("boxes", "Boxes", count)]
PER_IMAGE_COLUMNS = [Column("subset", "Subset"), Column("kind", "Image", stretch=True),
                     Column("boxes", "Boxes", count), Column("images", "Images", count)]
SIZE_COLUMNS = [Column("class_name", "Class", stretch=True), Column("subset", "Subset"),
                Column("size", "Box side (px)"), Column("boxes", "Boxes", count)]
DIFF_CLASS_COLUMNS = [Column("class_name", "Class", stretch=True), Column("added", "Added", count),
                      Column("removed", "Removed", count), Column("labels_changed", "Labels changed", count),
                      Column("moved", "Moved subset", count)]
DIFF_CELL_COLUMNS = [Column("class_name", "Class", stretch=True), Column("luggage_type", "Luggage"),
                     Column("clutter_level", "Clutter"), Column("scanner_model", "Scanner model"),
                     Column("pose", "Pose"), *DIFF_CLASS_COLUMNS[1:]]
BELOW_COLUMNS = [Column("class_name", "Class", stretch=True), Column("luggage_type", "Luggage"),
                 Column("clutter_level", "Clutter"), Column("scanner_model", "Scanner model"), Column("pose", "Pose"),
                 Column("target_setups", "Target", count), Column("setups", "Setups", count),
                 Column("missing_setups", "Missing", count)]
NEAR_COLUMNS = [Column("image_id", "Image"), Column("other_id", "Other split's image", stretch=True),
                Column("distance", "Distance (bits)", count)]
CHARTS = (("Boxes per class", "boxes"), ("Images per class", "images"), ("Boxes per image", "per_image"),
          ("Box sizes", "sizes"))


def load_versions(lab: Lab) -> list[dict[str, Any]]:
    """Every version with its images per subset (pool thread)."""
    from core.datasets.versions import list_versions

    return [{**v, "ref": f"{v['name']}@{v['version']}", **{s: v["subsets"].get(s) for s in SUBSETS},
             "hash": (v["content_hash"] or "")[:12]} for v in list_versions(lab.catalog)]


# -- freeze wizard ------------------------------------------------------------------------------


class FreezeWizardDialog(QDialog):
    """Choose a rule, preview it (the core's dry run), then freeze after a confirmation."""

    frozen = Signal(object)  # the FreezeReport of the version frozen
    previewed = Signal(object)  # the dry run's FreezeReport, or the DatasetError refusing it

    def __init__(self, lab: Lab, versions: list[dict[str, Any]], parent: QWidget | None = None,
                 rule: str = "test"):
        super().__init__(parent)
        self._lab = lab
        self.setWindowTitle("Freeze a dataset version")
        self.resize(900, 640)
        self.report = None  # the last dry run's report
        self.refusal: BaseException | None = None
        self._busy = False
        # -- page 1: the rule
        self.name = QLineEdit("test-set" if rule == "test" else "train")
        self.test_rule = QRadioButton("Test set: the quota plan's test images whose labels passed review")
        self.train_rule = QRadioButton("Train set: k:1 clone of a test set's mix per class and cell")
        (self.test_rule if rule == "test" else self.train_rule).setChecked(True)
        self.plan = QComboBox()
        for p in _published_plans(lab):
            self.plan.addItem(f"{p['name']} v{p['version']}", f"{p['name']}@{p['version']}")
        self.parent_box = QComboBox()
        self._versions = versions
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("new (recorded), or the parent train set's")
        self.ratio = QSpinBox()
        self.ratio.setRange(0, 50)
        self.ratio.setSpecialValueText("each class's ratio step")
        self.ratio.setSuffix(":1")
        self.validation = QDoubleSpinBox()
        self.validation.setRange(0.0, 0.9)
        self.validation.setSingleStep(0.05)
        self.validation.setValue(0.1)
        self.exclude = QCheckBox("Leave out images with a near-duplicate in the other split")
        form = QFormLayout()
        form.addRow("Dataset name", self.name)
        form.addRow("Rule", self.test_rule)
        form.addRow("", self.train_rule)
        form.addRow("Quota plan", self.plan)
        form.addRow("Derived from", self.parent_box)
        form.addRow("Seed", self.seed)
        form.addRow("Ratio (train:test)", self.ratio)
        form.addRow("Validation share", self.validation)
        form.addRow("", self.exclude)
        self.rule_note = QLabel("")
        self.rule_note.setWordWrap(True)
        rule_page = QWidget()
        rule_layout = QVBoxLayout(rule_page)
        rule_layout.addLayout(form)
        rule_layout.addWidget(self.rule_note)
        rule_layout.addStretch(1)
        # -- page 2: the preview
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.refused = QPlainTextEdit()
        self.refused.setReadOnly(True)
        self.refused.setObjectName("refusal")
        self.class_model = RowsModel(CLASS_COLUMNS, self)
        self.class_table, _ = make_table(self.class_model)
        self.class_table.setObjectName("preview_classes")
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.below_model = RowsModel(BELOW_COLUMNS, self)
        self.below_table, _ = make_table(self.below_model)
        self.below_table.setSortingEnabled(False)  # most missing first, as the core orders them
        self.near_model = RowsModel(NEAR_COLUMNS, self)
        self.near_table, _ = make_table(self.near_model)
        self.warning_tabs = QTabWidget()
        self.warning_tabs.addTab(self.below_table, "Cells below target")
        self.warning_tabs.addTab(self.near_table, "Near-duplicates across splits")
        preview_page = QWidget()
        preview_layout = QVBoxLayout(preview_page)
        preview_layout.addWidget(self.summary)
        preview_layout.addWidget(self.refused, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.class_table)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.warnings)
        right_layout.addWidget(self.warning_tabs, 1)
        split.addWidget(right)
        split.setSizes([340, 520])
        self.preview_split = split
        preview_layout.addWidget(split, 3)
        self.pages = QStackedWidget()
        self.pages.addWidget(rule_page)
        self.pages.addWidget(preview_page)
        # -- buttons: Cancel, Back, Preview / Freeze
        self.buttons = QDialogButtonBox()
        self.back_button = self.buttons.addButton("Back", QDialogButtonBox.ButtonRole.ActionRole)
        self.preview_button = self.buttons.addButton("Preview", QDialogButtonBox.ButtonRole.ActionRole)
        self.freeze_button = self.buttons.addButton("Freeze…", QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        for b in (self.back_button, self.preview_button, self.freeze_button):
            b.setAutoDefault(False)
        self.buttons.rejected.connect(self.reject)
        self.back_button.clicked.connect(self._back)
        self.preview_button.clicked.connect(self.preview)
        self.freeze_button.clicked.connect(self.confirm)
        self.status = QLabel("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.test_rule.toggled.connect(lambda _on: self._rule_changed())
        self.parent_box.currentIndexChanged.connect(
            lambda _i: self.plan.setEnabled(self.parent_box.currentData() is None))
        self.confirmation = None
        self._rule_changed()
        self._show_page(0)

    # -- page 1

    @property
    def rule(self) -> str:
        return "test" if self.test_rule.isChecked() else "train"

    def _rule_changed(self) -> None:
        train = self.rule == "train"
        self.parent_box.clear()
        if train:
            self.parent_box.addItem("the plan's latest test set", None)
        else:
            self.parent_box.addItem("nothing", None)
        for v in self._versions:
            if train or v["rule"] == "test":
                self.parent_box.addItem(f"{v['ref']} ({v['rule']})", v["ref"])
        for w in (self.seed, self.ratio, self.validation):
            w.setEnabled(train)
        if self.name.text() in ("test-set", "train"):
            self.name.setText("train" if train else "test-set")
        self.rule_note.setText(
            "A train set takes, per class, k x the test set's images of each cell (luggage x clutter x scanner model x "
            "pose) from train images that passed review; derived from a train set, it keeps that set's images. "
            "Validation is carved from train by physical setup, never from test." if train else
            "The test set holds the plan's test-split images that are usable, labelled and have no open QA flag.")

    def arguments(self) -> dict[str, Any]:
        """The freeze's arguments as the core takes them (raises XLabError on a bad seed)."""
        train = self.rule == "train"
        seed_text = self.seed.text().strip()
        if train and seed_text and not seed_text.lstrip("-").isdigit():
            raise XLabError(f"seed '{seed_text}' is not a whole number; leave it empty for a new one")
        parent = self.parent_box.currentData()
        return {
            "name": self.name.text().strip(), "rule": self.rule,
            "plan": None if parent else self.plan.currentData(),  # derived: the parent's plan
            "ratio": (self.ratio.value() or None) if train else None,
            "seed": int(seed_text) if train and seed_text else None,
            "parent": parent,
            "validation": round(self.validation.value(), 4) if train else None,
            "exclude_near_duplicates": self.exclude.isChecked(),
        }

    def _show_page(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        self.back_button.setVisible(index == 1)
        self.preview_button.setVisible(index == 0)
        self.freeze_button.setVisible(index == 1)
        self.freeze_button.setEnabled(index == 1 and self.report is not None)

    def _back(self) -> None:
        self.report = None
        self.status.setText("")
        self._show_page(0)

    def preview(self) -> None:
        """The core's dry run of the freeze, off the GUI thread."""
        from core.datasets.versions import freeze

        if self._busy:
            return
        try:
            args = self.arguments()
        except XLabError as exc:
            show_error(self, "Freeze", exc)
            return
        self._busy = True
        self.preview_button.setEnabled(False)
        self.status.setText("Computing the preview (a dry run; nothing is written)…")
        lab = self._lab
        tasks.call(lambda: freeze(lab.catalog, dry_run=True, **args),
                   self._show_preview, self._preview_failed, self)

    def _preview_failed(self, exc: BaseException) -> None:
        from core.errors import DatasetError

        self._busy = False
        self.preview_button.setEnabled(True)
        self.status.setText("")
        if isinstance(exc, DatasetError) and exc.problems:
            # A refusal with its list (e.g. physical objects in both splits): shown in full.
            self.report, self.refusal = None, exc
            self.summary.setText(f"<b style='color:#b02020'>Refused:</b> {exc}")
            self.refused.setPlainText("\n".join(str(p) for p in exc.problems))
            self.refused.show()
            self.preview_split.hide()
            self._show_page(1)
            self.previewed.emit(exc)
            return
        show_error(self, "Freeze preview", exc)

    def _show_preview(self, report) -> None:  # core.datasets.versions.FreezeReport
        self._busy = False
        self.preview_button.setEnabled(True)
        self.report, self.refusal = report, None
        self.refused.hide()
        self.preview_split.show()
        subsets = ", ".join(f"{n:,} {s}" for s, n in report.subsets.items()) or "no images"
        left = ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in report.left_out.items() if n)
        lines = [f"<b>{report.name}@{report.version}</b> would be a {report.rule} set of {report.plan}: "
                 f"{report.images:,} images ({subsets}), {report.boxes:,} boxes, labels as of {report.label_seq}"
                 + (f", seed {report.seed}" if report.seed is not None else "")
                 + (f", cloning {report.test_version}" if report.test_version else "")
                 + (f", from {report.parent}" if report.parent else "") + "."]
        if left:
            lines.append(f"Left out: {left}.")
        if report.ratio:
            lines.append("k per class: " + ", ".join(f"{c} {k}:1" for c, k in report.ratio.items()) + ".")
        self.summary.setText("<br>".join(lines))
        self.class_model.set_rows(report.classes)
        warn = []
        if report.near_duplicates:
            warn.append(f"⚠ {len(report.near_duplicates):,} near-duplicate pair(s) across the splits"
                        " (tick 'Leave out…' on the previous page to exclude them).")
        if report.near_duplicates_excluded:
            warn.append(f"{report.near_duplicates_excluded:,} image(s) left out as near-duplicates of the other split.")
        if report.clone_borrowed or report.clone_short:
            warn.append(f"Clone of the test mix: {report.clone_borrowed:,} image(s) borrowed from the nearest cells, "
                        f"{report.clone_short:,} not found.")
        if report.below_target_cells:
            warn.append(f"⚠ {report.below_target_cells:,} cell(s) below the plan's target, "
                        f"{report.below_target_setups:,} setup(s) missing.")
        else:
            warn.append("Every cell of the plan meets its target.")
        if not report.images:
            warn.append("⚠ Nothing to freeze: no image passes the rule.")
        self.warnings.setText("<br>".join(warn))
        self.below_model.set_rows(report.below_target)
        self.near_model.set_rows(report.near_duplicates)
        self.status.setText("Preview from a dry run: nothing was written.")
        self._show_page(1)
        self.freeze_button.setEnabled(report.images > 0)
        self.previewed.emit(report)

    # -- freeze

    def confirm(self):
        """Ask before freezing (irreversible); Cancel is the default."""
        if self.report is None:
            return None
        r = self.report
        self.confirmation = confirm_destructive(
            self, "Freeze dataset version",
            f"Freeze {r.name}@{r.version}: {r.images:,} images, {r.boxes:,} boxes?",
            "Freeze", self._freeze,
            details="A frozen version can never be changed or removed; a later freeze makes the next version.")
        return self.confirmation

    def _freeze(self) -> None:
        from core.datasets.versions import freeze

        if self._busy or self.report is None:
            return
        args = self.arguments()
        if args["rule"] == "train":
            args["seed"] = self.report.seed  # the previewed draw, not a new random one
        self._busy = True
        self.freeze_button.setEnabled(False)
        self.status.setText("Freezing…")
        lab = self._lab
        tasks.call(lambda: freeze(lab.catalog, **args), self._frozen, self._freeze_failed, self)

    def _frozen(self, report) -> None:
        self._busy = False
        self.frozen.emit(report)
        self.accept()

    def _freeze_failed(self, exc: BaseException) -> None:
        self._busy = False
        self.freeze_button.setEnabled(True)
        self.status.setText("")
        show_error(self, "Freeze", exc)


def _published_plans(lab: Lab) -> list[dict[str, Any]]:
    from core.quota.plans import list_plans

    plans = [p for p in list_plans(lab.catalog) if p["status"] == "published"]
    return sorted(plans, key=lambda p: (p.get("published_at") or "", p["version"]), reverse=True)


# -- export ------------------------------------------------------------------------------------


class ExportDialog(QDialog):
    """Format, folder (a new one, starting in the documents folder) and copy or link."""

    def __init__(self, ref: str, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Export {ref}")
        self._ref = ref
        self._settings = settings if settings is not None else QSettings()
        self.format = QComboBox()
        for title, key in FORMATS:
            self.format.addItem(title, key)
        self.folder = QLineEdit()
        self.folder.setMinimumWidth(420)
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        self.link = QCheckBox("Hard-link the images instead of copying them (same disk only)")
        where = QHBoxLayout()
        where.addWidget(self.folder, 1)
        where.addWidget(self.browse)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("New folder", where)
        form.addRow("", self.link)
        note = QLabel("The export is written into this new folder: the labels, the images and a manifest of "
                      "content hashes. It appears only once complete.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._base = save_folder(EXPORT_KIND, self._settings)
        self.format.currentIndexChanged.connect(lambda _i: self._suggest())
        self._suggest()

    def _suggest(self) -> None:
        name = self._ref.replace("@", "-v") + f"-{self.format.currentData()}"
        self.folder.setText(str(self._base / name))

    def _browse(self) -> QFileDialog:
        dialog = QFileDialog(self, "Folder to export into", str(self._base))
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def chosen(path: str) -> None:
            self._base = Path(path)
            self._suggest()

        dialog.fileSelected.connect(chosen)
        dialog.open()
        return dialog

    def chosen(self) -> tuple[str, Path, bool]:
        path = Path(self.folder.text().strip()).expanduser()
        self._settings.setValue(f"{SAVE_FOLDERS_KEY}/{EXPORT_KIND}", str(path.parent))
        return self.format.currentData(), path, self.link.isChecked()


# -- the area ------------------------------------------------------------------------------------


class DatasetsView(AreaView):
    loaded = Signal()  # the list of versions was shown
    distribution_shown = Signal()
    diff_shown = Signal()
    export_ended = Signal(str)  # "finished", "cancelled" or "failed"
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self._settings = settings
        self.versions: list[dict[str, Any]] = []
        self.distribution = None  # core.datasets.distribution.Distribution of the selected version
        self.diff = None  # core.datasets.diff.VersionDiff last shown
        self.wizard: FreezeWizardDialog | None = None
        self.export_task: tasks.GeneratorTask | None = None
        self.export_batch: int | None = None  # images between two progress records (default: the core's)
        self._loading = False
        self._built = False
        self._pending_select: str | None = None  # a version just frozen, selected once listed
        # -- top bar
        self.freeze_button = QPushButton("Freeze a version…")
        self.freeze_button.clicked.connect(lambda: self.open_wizard())
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the selected version's images and labels in a format of your choice")
        self.export_button.clicked.connect(lambda: self.open_export())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter versions…")
        self.status = QLabel("")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.status)
        top.addWidget(self.freeze_button)
        top.addWidget(self.export_button)
        # -- the list
        self.model = RowsModel(VERSION_COLUMNS, self)
        self.table, self.proxy = make_table(self.model)
        self.table.setObjectName("versions")
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # the core's order: by name, oldest first
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.table.selectionModel().currentRowChanged.connect(lambda _c, _p: self._selected())
        # -- details: summary and lineage
        self.details = QLabel("")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.lineage = QTreeWidget()
        self.lineage.setObjectName("lineage")
        self.lineage.setHeaderLabels(["Lineage (parent → children)", "Rule", "Images"])
        # The version names take the width; rule and images keep their content's.
        self.lineage.header().setStretchLastSection(False)
        self.lineage.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            self.lineage.header().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.lineage.itemClicked.connect(lambda item, _col: self.select(item.data(0, Qt.ItemDataRole.UserRole)))
        details = QWidget()
        details_layout = QHBoxLayout(details)
        details_layout.addWidget(self.details, 1)
        details_layout.addWidget(self.lineage, 1)
        # -- distribution (the chart is added when first shown)
        self.chart_box = QComboBox()
        for title, key in CHARTS:
            self.chart_box.addItem(title, key)
        self.chart_box.currentIndexChanged.connect(lambda _i: self._show_distribution())
        self.dist_summary = QLabel("")
        self.dist_models = {"classes": RowsModel(CLASS_COLUMNS, self), "per_image": RowsModel(PER_IMAGE_COLUMNS, self),
                            "sizes": RowsModel(SIZE_COLUMNS, self)}
        self.dist_tables = QStackedWidget()
        self.dist_views = {}
        for key, model in self.dist_models.items():
            view, _ = make_table(model)
            view.setObjectName(f"distribution_{key}")
            self.dist_views[key] = view
            self.dist_tables.addWidget(view)
        self.plot = None
        self.chart_holder = QVBoxLayout()
        dist_top = QHBoxLayout()
        dist_top.addWidget(QLabel("Chart"))
        dist_top.addWidget(self.chart_box)
        dist_top.addWidget(self.dist_summary, 1)
        dist_body = QHBoxLayout()
        dist_body.addLayout(self.chart_holder, 3)
        dist_body.addWidget(self.dist_tables, 2)
        dist = QWidget()
        dist_layout = QVBoxLayout(dist)
        dist_layout.addLayout(dist_top)
        dist_layout.addLayout(dist_body, 1)
        # -- diff
        self.diff_a = QComboBox()
        self.diff_b = QComboBox()
        self.diff_cells = QCheckBox("By cell")
        self.diff_cells.toggled.connect(lambda _on: self._show_diff())
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(lambda: self.compare())
        self.diff_summary = QLabel("Choose two versions and Compare.")
        self.diff_summary.setWordWrap(True)
        self.diff_class_model = RowsModel(DIFF_CLASS_COLUMNS, self)
        self.diff_cell_model = RowsModel(DIFF_CELL_COLUMNS, self)
        self.diff_tables = QStackedWidget()
        for model, name in ((self.diff_class_model, "diff_classes"), (self.diff_cell_model, "diff_cells")):
            view, _ = make_table(model)
            view.setObjectName(name)
            self.diff_tables.addWidget(view)
        diff_top = QHBoxLayout()
        diff_top.addWidget(QLabel("From"))
        diff_top.addWidget(self.diff_a, 1)
        diff_top.addWidget(QLabel("to"))
        diff_top.addWidget(self.diff_b, 1)
        diff_top.addWidget(self.diff_cells)
        diff_top.addWidget(self.compare_button)
        diff = QWidget()
        diff_layout = QVBoxLayout(diff)
        diff_layout.addLayout(diff_top)
        diff_layout.addWidget(self.diff_summary)
        diff_layout.addWidget(self.diff_tables, 1)
        # -- tabs under the list
        self.tabs = QTabWidget()
        self.tabs.addTab(details, "Details and lineage")
        self.tabs.addTab(dist, "Distribution")
        self.tabs.addTab(diff, "Diff")
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(self.table)
        body.addWidget(self.tabs)
        body.setSizes([220, 440])
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(0, 0, 0, 0)
        content_layout.addLayout(top)
        content_layout.addWidget(body, 1)
        self.empty = EmptyStatePanel(NO_VERSIONS)
        self.empty_button = self.empty.add_action("Freeze the test set…", lambda: self.open_wizard("test"))
        self.pages = QStackedWidget()
        self.pages.addWidget(content)
        self.pages.addWidget(self.empty)
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)

    # -- list

    def _build(self) -> None:
        """The chart is made when the area is first shown (pyqtgraph stays off start-up)."""
        if self._built:
            return
        self._built = True
        import pyqtgraph as pg

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.addLegend(offset=(-10, 10))
        self.chart_holder.addWidget(self.plot)

    def shutdown(self) -> None:
        """Window closing: an export is stopped (its folder removed), and the chart leaves
        pyqtgraph's registry of views before Qt deletes it."""
        if self.export_task is not None and self.export_task.running:
            self.export_task.cancel()
            self.export_task.wait(10_000)
        if self.plot is None:
            return
        import pyqtgraph as pg

        for item in self.plot.scene().items():
            if isinstance(item, pg.ViewBox):
                pg.ViewBox.AllViews.pop(item, None)

    def refresh(self) -> None:
        self._build()
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        lab = self._lab
        tasks.call(lambda: load_versions(lab), self._show_versions, self._failed_read, self)

    def _failed_read(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read the dataset versions", exc)
        self.loaded.emit()

    def _show_versions(self, rows: list[dict[str, Any]]) -> None:
        self._loading = False
        current = self.selected_ref()
        self.versions = rows
        self.model.set_rows(rows)
        self.pages.setCurrentIndex(0 if rows else 1)
        self.export_button.setEnabled(bool(rows))
        self.status.setText(f"{len(rows)} version(s)" if rows else "")
        self._fill_lineage()
        for box in (self.diff_a, self.diff_b):
            was = box.currentData()
            box.blockSignals(True)
            box.clear()
            for r in rows:
                box.addItem(f"{r['ref']} ({r['rule']})", r["ref"])
            box.setCurrentIndex(max(0, box.findData(was)))
            box.blockSignals(False)
        if rows and self.diff_a.currentData() == self.diff_b.currentData() and len(rows) > 1:
            self.diff_a.setCurrentIndex(max(0, len(rows) - 2))
            self.diff_b.setCurrentIndex(len(rows) - 1)
        want, self._pending_select = self._pending_select or current, None
        if rows:
            self.select(want if any(r["ref"] == want for r in rows) else rows[-1]["ref"])
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _fill_lineage(self) -> None:
        self.lineage.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for r in self.versions:  # parents are always frozen before their children
            item = QTreeWidgetItem([r["ref"], r["rule"], f"{r['images']:,}"])
            item.setData(0, Qt.ItemDataRole.UserRole, r["ref"])
            parent = items.get(r["parent"]) if r["parent"] else None
            if parent is not None:
                parent.addChild(item)
            else:
                self.lineage.addTopLevelItem(item)
            items[r["ref"]] = item
        self.lineage.expandAll()
        self._lineage_items = items

    def select(self, ref: str | None) -> None:
        """Select version ``ref`` (NAME@N) in the list."""
        if not ref:
            return
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if self.model.rows[self.proxy.mapToSource(index).row()]["ref"] == ref:
                self.table.setCurrentIndex(index)
                self.table.selectRow(row)
                return

    def selected_ref(self) -> str | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return self.model.rows[self.proxy.mapToSource(index).row()]["ref"]

    def _selected(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return
        lab = self._lab
        item = getattr(self, "_lineage_items", {}).get(ref)
        if item is not None:
            self.lineage.setCurrentItem(item)

        def read():
            from core.datasets.distribution import distribution
            from core.datasets.versions import show

            return show(lab.catalog, ref), distribution(lab.catalog, ref)

        tasks.call(read, lambda result: self._show_selected(ref, *result), self._failed_read, self)

    def _show_selected(self, ref: str, shown: dict[str, Any], dist) -> None:
        if ref != self.selected_ref():
            return  # another version was chosen meanwhile
        report = shown["report"]
        ancestors = " ← ".join(a["version"] for a in shown["lineage"]["ancestors"]) or "—"
        children = ", ".join(f"{d['version']} (from {d['from']})" for d in shown["lineage"]["descendants"]) or "—"
        rule = shown["rule_json"]
        facts = [
            f"<b>{ref}</b>: {shown['rule']} set of {shown['plan']}",
            f"{shown['images']:,} images ({', '.join(f'{n:,} {s}' for s, n in report['subsets'].items())}), "
            f"{shown['boxes']:,} boxes; labels as of {shown['label_seq']}",
            f"Frozen by {shown['frozen_by'] or '—'} on {when(shown['frozen_at'])}",
            f"Content hash <code>{shown['content_hash']}</code>",
        ]
        if shown["seed"] is not None:
            facts.append(f"Seed {shown['seed']}; validation share {rule.get('validation_fraction')}; "
                         f"k per class: {', '.join(f'{c} {k}:1' for c, k in rule.get('ratio_by_class', {}).items())}")
        if shown["test_version"]:
            facts.append(f"Clones the test mix of {shown['test_version']}")
        facts += [f"Derived from: {ancestors}", f"Derived from it: {children}",
                  f"At freeze: {len(report['near_duplicates']):,} near-duplicate pair(s) across the splits, "
                  f"{report['near_duplicates_excluded']:,} left out; {report['below_target_cells']:,} cell(s) below "
                  f"target ({report['below_target_setups']:,} setups missing)"]
        self.details.setText("<br>".join(facts))
        self.distribution = dist
        self._show_distribution()

    # -- distribution

    def chart_data(self) -> tuple[list[str], dict[str, list[float]], str, str]:
        """The chosen chart's categories, values per subset, and axis labels."""
        d = self.distribution
        key = self.chart_box.currentData()
        subsets = [s for s in SUBSETS if s in d.subsets]
        if key in ("boxes", "images"):
            cats = sorted({c["class_name"] for c in d.classes if c[key]})
            values = {s: [sum(c[key] for c in d.classes if c["class_name"] == k and c["subset"] == s) for k in cats]
                      for s in subsets}
            return cats, values, "class", key
        if key == "per_image":
            keys = sorted({(not r["negative"], r["boxes"]) for r in d.boxes_per_image})
            cats = [f"{b}" if threat else "negative" for threat, b in keys]
            values = {s: [sum(r["images"] for r in d.boxes_per_image if r["subset"] == s
                              and (not r["negative"], r["boxes"]) == k) for k in keys] for s in subsets}
            return cats, values, "boxes on the image", "images"
        cats = [b for b in d.size_buckets if any(x["size"] == b for x in d.box_sizes)]
        values = {s: [sum(x["boxes"] for x in d.box_sizes if x["size"] == b and x["subset"] == s) for b in cats]
                  for s in subsets}
        return cats, values, "box side (px, square of the same area)", "boxes"

    def _show_distribution(self) -> None:
        d = self.distribution
        if d is None or self.plot is None:
            return
        import pyqtgraph as pg

        from core import colours

        key = self.chart_box.currentData()
        cats, values, x_label, y_label = self.chart_data()
        self.plot.clear()
        n = max(1, len(values))
        width = 0.8 / n
        for i, (subset, heights) in enumerate(values.items()):
            xs = [k - 0.4 + width * (i + 0.5) for k in range(len(cats))]
            self.plot.addItem(pg.BarGraphItem(x=xs, height=heights, width=width * 0.95,
                                              brush=colours.SUBSETS.get(subset, (120, 120, 120)), name=subset))
        self.plot.getAxis("bottom").setTicks([list(enumerate(cats))])
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        top = max([1, *(h for heights in values.values() for h in heights)])
        self.plot.setXRange(-0.6, max(0, len(cats) - 1) + 0.6, padding=0)
        self.plot.setYRange(0, top * 1.1, padding=0)
        self.plot.setTitle(f"{self.chart_box.currentText()} — {d.version}")
        table = {"boxes": "classes", "images": "classes", "per_image": "per_image", "sizes": "sizes"}[key]
        if table == "classes":
            rows = d.classes
        elif table == "per_image":
            rows = [{"subset": r["subset"], "kind": "negative" if r["negative"] else "threat", "boxes": r["boxes"],
                     "images": r["images"]} for r in d.boxes_per_image]
        else:
            rows = d.box_sizes
        self.dist_models[table].set_rows(rows)
        self.dist_tables.setCurrentWidget(self.dist_views[table])
        self.dist_summary.setText(", ".join(f"{n:,} {s} images" for s, n in d.subsets.items()))
        self.distribution_shown.emit()

    # -- diff

    def compare(self, a: str | None = None, b: str | None = None) -> None:
        from core.datasets.diff import diff

        a = a or self.diff_a.currentData()
        b = b or self.diff_b.currentData()
        if not a or not b:
            return
        self.diff_a.setCurrentIndex(max(0, self.diff_a.findData(a)))
        self.diff_b.setCurrentIndex(max(0, self.diff_b.findData(b)))
        self.tabs.setCurrentIndex(2)
        self.diff_summary.setText(f"Comparing {a} with {b}…")
        lab = self._lab
        tasks.call(lambda: diff(lab.catalog, a, b), self._diff_read, lambda e: show_error(self, "Diff", e), self)

    def _diff_read(self, d) -> None:
        self.diff = d
        self._show_diff()
        self.diff_shown.emit()

    def _show_diff(self) -> None:
        d = self.diff
        if d is None:
            return
        text = (f"<b>{d.a} → {d.b}</b>: {d.added:,} image(s) added, {d.removed:,} removed, "
                f"{d.labels_changed:,} with changed labels, {d.moved:,} moved between train and validation")
        if d.boxes_by_class:
            text += "<br>Boxes of the changed images: " + ", ".join(
                f"{b['class_name']} −{b['boxes_gone']:,} +{b['boxes_new']:,}" for b in d.boxes_by_class)
        self.diff_summary.setText(text)
        self.diff_class_model.set_rows(d.by_class)
        self.diff_cell_model.set_rows(d.by_cell)
        self.diff_tables.setCurrentIndex(1 if self.diff_cells.isChecked() else 0)

    # -- wizard

    def open_wizard(self, rule: str = "test") -> FreezeWizardDialog:
        self.wizard = FreezeWizardDialog(self._lab, self.versions, self, rule=rule)
        self.wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.wizard.frozen.connect(self._frozen)
        self.wizard.open()
        return self.wizard

    def _frozen(self, report) -> None:
        self._pending_select = f"{report.name}@{report.version}"
        self.status.setText(f"froze {report.name}@{report.version}")
        self._stale = True
        self.refresh()

    # -- export

    def open_export(self, ref: str | None = None) -> ExportDialog | None:
        ref = ref or self.selected_ref()
        if ref is None:
            return None
        dialog = ExportDialog(ref, self, self._settings)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.export(ref, *dialog.chosen()))
        dialog.open()
        return dialog

    def export(self, ref: str, fmt: str, folder: Path, link: bool = False) -> tasks.GeneratorTask:
        """Export off the GUI thread, with a progress dialog whose Cancel leaves nothing behind."""
        from core.datasets.export import BATCH, export_version_steps

        lab, batch = self._lab, self.export_batch or BATCH
        self.export_button.setEnabled(False)
        task = tasks.run_task(lambda: export_version_steps(lab, ref, fmt, folder, link=link, batch=batch),
                              title=f"Exporting {ref} as {fmt}", parent=self,
                              on_finished=lambda report: self._exported(ref, fmt, report),
                              on_failed=self._export_failed)
        task.cancelled.connect(self._export_cancelled)
        self.export_task = task
        return task

    def _exported(self, ref: str, fmt: str, report) -> None:
        from core.labels.exports import MANIFEST

        self.export_button.setEnabled(True)
        self.status.setText(f"{ref} exported to {report.out_dir}")
        box = announce_saved(self, Path(report.out_dir) / MANIFEST)
        box.setText(f"Exported {ref} as {fmt}: {report.images:,} images, {report.boxes:,} boxes")
        box.setInformativeText(report.out_dir)
        self.saved_box = box
        self.export_ended.emit("finished")

    def _export_failed(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        show_error(self, "Export", exc)
        self.export_ended.emit("failed")

    def _export_cancelled(self) -> None:
        self.export_button.setEnabled(True)
        self.status.setText("export cancelled; nothing was written")
        self.export_ended.emit("cancelled")
