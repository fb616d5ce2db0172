"""Today: the technician's checklist for this station.

The current step big and clear (bag, item, pose drawing, images done /
wanted), the next steps, the session's progress and its newest images. A USB
barcode scanner types into the always-focused scan field like a keyboard and
ends with Enter; every tag is checked by core and a refusal says why.
Keyboard first: F2 skip, F3 flag, F5 take waiting images, F6 retake the
selected (or newest) image, Ctrl+Z undo, Ctrl+P print, F4 next session.

Every action runs off the GUI thread, one at a time and in the order typed
(a scanner can send the next tag before the last one is answered).
"""

from __future__ import annotations

import getpass
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import show_error
from app.views.area import AreaView
from app.views.pose_diagram import PoseDiagram
from core.capture import sessions as cs
from core.catalog import ingest_store
from core.lab import Lab

RELEVANT = ("capture_sessions", "capture_steps", "images", "split_pools", "*")
THUMBS = 12
OK_STYLE = "color: #1b5e20; background: #e8f5e9; border-radius: 6px; padding: 6px;"
BAD_STYLE = "color: #b71c1c; background: #ffebee; border-radius: 6px; padding: 6px; font-weight: bold;"
INFO_STYLE = "color: #333; background: #eef2f7; border-radius: 6px; padding: 6px;"


SHORTCUTS = ("F2", "F3", "F4", "F5", "F6", "Ctrl+Z", "Ctrl+P")


class ScanField(QLineEdit):
    """Where the barcode scanner types. Its own text undo would swallow
    Ctrl+Z, which here undoes the technician's last action."""

    def event(self, event) -> bool:  # noqa: D401 - Qt API
        if event.type() == QEvent.Type.ShortcutOverride and \
                QKeySequence(event.keyCombination()).toString() in SHORTCUTS:
            event.ignore()
            return False
        return super().event(event)


@dataclass(frozen=True)
class TodaySnapshot:
    scanners: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    view: cs.SessionView | None
    recent: list[dict[str, Any]]


def load_today(lab: Lab, scanner: str | None, session_id: int | None) -> TodaySnapshot:
    scanners = ingest_store.scanners(lab.catalog)
    sessions = cs.list_sessions(lab, scanner=scanner) if scanner else []
    if session_id not in {s["id"] for s in sessions}:
        session_id = None
    view = cs.session_view(lab, session_id) if session_id else None
    recent = cs.recent_images(lab, session_id, THUMBS) if session_id else []
    return TodaySnapshot(scanners, sessions, view, recent)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _big(text: str = "", size: int = 20, bold: bool = True) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSize(size)
    font.setBold(bold)
    label.setFont(font)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class TodayChecklistView(AreaView):
    loaded = Signal()
    scan_answered = Signal(object)  # core ScanResult, after each tag
    relevant_tables = RELEVANT

    def __init__(self, lab: Lab, parent: QWidget | None = None, settings: QSettings | None = None):
        super().__init__(parent)
        self._lab = lab
        self._settings = settings or QSettings()
        self._loading = False
        self._snapshot: TodaySnapshot | None = None
        self._session_id: int | None = None
        self._held = False  # this window holds the selected session
        self._actions: deque[tuple[Callable[[], Any], Callable[[Any], None]]] = deque()
        self._busy = False

        # -- top bar: who, where, which session --
        self.scanner_box = QComboBox()
        self.scanner_box.setMinimumWidth(170)
        self.technician = QLineEdit(self._settings.value("today/technician", "") or getpass.getuser())
        self.technician.setPlaceholderText("your name")
        self.technician.setMaximumWidth(160)
        self.session_box = QComboBox()
        self.session_box.setMinimumWidth(300)
        self.start_button = QPushButton("Start session")
        self.release_button = QPushButton("Leave")
        self.release_button.setToolTip("Leave the session open for someone else")
        self.close_button = QPushButton("Close session…")
        self.print_button = QPushButton("Print…")
        self.print_button.setToolTip("Save the session's checklist as a PDF (Ctrl+P)")
        top = QHBoxLayout()
        for label, widget in (("Station", self.scanner_box), ("Technician", self.technician),
                              ("Session", self.session_box)):
            top.addWidget(QLabel(label))
            top.addWidget(widget)
        for button in (self.start_button, self.release_button, self.close_button, self.print_button):
            top.addWidget(button)
        top.addStretch(1)

        # -- the current step --
        self.step_title = _big("", 22)
        self.split_badge = _big("", 16)
        self.bag_label = _big("", 20)
        self.item_label = _big("", 20)
        self.bag_mark = _big("", 20)
        self.item_mark = _big("", 20)
        self.pose_label = _big("", 16, bold=False)
        self.count_label = _big("", 34)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.flag_label = _big("", 14)
        self.flag_label.setWordWrap(True)
        self.diagram = PoseDiagram()
        self.scan_field = ScanField()
        self.scan_field.setPlaceholderText("Scan the bag tag and the item tag (or type a tag and press Enter)")
        font = self.scan_field.font()
        font.setPointSize(16)
        self.scan_field.setFont(font)
        self.scan_field.setMinimumHeight(44)
        self.feedback = QLabel("")
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(40)
        font = self.feedback.font()
        font.setPointSize(13)
        self.feedback.setFont(font)

        card = QFrame()
        card.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(card)
        grid.addWidget(self.step_title, 0, 0, 1, 2)
        grid.addWidget(self.split_badge, 0, 2, alignment=Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.bag_mark, 1, 0)
        grid.addWidget(self.bag_label, 1, 1, 1, 2)
        grid.addWidget(self.item_mark, 2, 0)
        grid.addWidget(self.item_label, 2, 1, 1, 2)
        grid.addWidget(self.pose_label, 3, 1, 1, 2)
        grid.addWidget(self.diagram, 4, 0, 1, 2)
        grid.addWidget(self.count_label, 4, 2)
        grid.addWidget(self.flag_label, 5, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(4, 1)

        self.skip_button = QPushButton("Skip step… (F2)")
        self.flag_button = QPushButton("Flag problem… (F3)")
        self.waiting_button = QPushButton("Take waiting images (F5)")
        self.retake_button = QPushButton("Retake image (F6)")
        self.undo_button = QPushButton("Undo (Ctrl+Z)")
        buttons = QHBoxLayout()
        for button in (self.skip_button, self.flag_button, self.waiting_button, self.retake_button, self.undo_button):
            button.setMinimumHeight(40)
            buttons.addWidget(button)

        self.thumbs = QListWidget()
        self.thumbs.setViewMode(QListView.ViewMode.IconMode)
        self.thumbs.setIconSize(QSize(112, 84))
        self.thumbs.setGridSize(QSize(124, 112))
        self.thumbs.setFlow(QListView.Flow.LeftToRight)
        self.thumbs.setWrapping(False)
        self.thumbs.setMovement(QListView.Movement.Static)
        self.thumbs.setFixedHeight(132)
        self.thumbs.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.thumbs.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        move_action = QAction("Move to another step…", self.thumbs)
        move_action.triggered.connect(self._move_selected)
        retake_action = QAction("Retake (set aside)", self.thumbs)
        retake_action.triggered.connect(self._retake)
        self.thumbs.addAction(retake_action)
        self.thumbs.addAction(move_action)

        left = QVBoxLayout()
        left.addWidget(card, 1)
        left.addWidget(self.scan_field)
        left.addWidget(self.feedback)
        left.addLayout(buttons)
        left.addWidget(QLabel("Newest images of this session (right-click: retake or move)"))
        left.addWidget(self.thumbs)

        # -- right: progress and what comes next --
        self.progress = QProgressBar()
        self.progress.setMinimumHeight(28)
        self.progress_label = QLabel("")
        self.progress_label.setWordWrap(True)
        self.next_list = QListWidget()
        self.next_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.next_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.next_list.setWordWrap(True)
        self.next_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        right = QVBoxLayout()
        right.addWidget(_big("Session progress", 13))
        right.addWidget(self.progress)
        right.addWidget(self.progress_label)
        right.addWidget(_big("Next steps", 13))
        right.addWidget(self.next_list, 1)
        right_box = QWidget()
        right_box.setLayout(right)
        right_box.setMaximumWidth(340)

        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addWidget(right_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body, 1)

        self.scanner_box.currentIndexChanged.connect(self._scanner_chosen)
        self.session_box.currentIndexChanged.connect(self._session_chosen)
        self.start_button.clicked.connect(lambda: self.start(take_over=False))
        self.release_button.clicked.connect(self.release)
        self.close_button.clicked.connect(self._close_session)
        self.print_button.clicked.connect(self._print)
        self.scan_field.returnPressed.connect(self._scanned)
        self.skip_button.clicked.connect(self._skip)
        self.flag_button.clicked.connect(self._flag)
        self.waiting_button.clicked.connect(self._take_waiting)
        self.retake_button.clicked.connect(self._retake)
        self.undo_button.clicked.connect(self.undo)
        self.technician.editingFinished.connect(self._technician_entered)
        slots = (self._skip, self._flag, self._next_session, self._take_waiting, self._retake, self.undo, self._print)
        for keys, slot in zip(SHORTCUTS, slots):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        self._heartbeat = QTimer(self)
        self._heartbeat.setInterval(int(cs.HEARTBEAT_S * 1000))
        self._heartbeat.timeout.connect(self._beat)
        self._show_step(None)

    # -- identity --------------------------------------------------------------

    @property
    def technician_name(self) -> str:
        return self.technician.text().strip()

    @property
    def scanner(self) -> str | None:
        return self.scanner_box.currentData()

    @property
    def session_id(self) -> int | None:
        return self._session_id

    # -- data ------------------------------------------------------------------

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        scanner, session_id = self.scanner or self._settings.value("today/scanner", None), self._session_id
        tasks.call(lambda: load_today(self._lab, scanner, session_id), self._loaded, self._load_failed, self)

    def _load_failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read today's sessions", exc)

    def _loaded(self, snap: TodaySnapshot) -> None:
        self._loading = False
        self._snapshot = snap
        self._fill_scanners(snap)
        self._fill_sessions(snap)
        if snap.view is not None and snap.view.session["id"] != self._session_id:
            snap = TodaySnapshot(snap.scanners, snap.sessions, None, [])
        self._show_session(snap)
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _fill_scanners(self, snap: TodaySnapshot) -> None:
        wanted = self.scanner or self._settings.value("today/scanner", None)
        names = [s["name"] for s in snap.scanners]
        if [self.scanner_box.itemData(i) for i in range(self.scanner_box.count())] != names:
            self.scanner_box.blockSignals(True)
            self.scanner_box.clear()
            for s in snap.scanners:
                self.scanner_box.addItem(f"{s['name']} · {s['station']}", s["name"])
            self.scanner_box.blockSignals(False)
        index = names.index(wanted) if wanted in names else 0
        if names and self.scanner_box.currentIndex() != index:
            self.scanner_box.blockSignals(True)
            self.scanner_box.setCurrentIndex(index)
            self.scanner_box.blockSignals(False)
        if names and wanted != names[index]:
            self._settings.setValue("today/scanner", names[index])
            self.refresh_soon()

    def _fill_sessions(self, snap: TodaySnapshot) -> None:
        me = self.technician_name
        if self._session_id is None and snap.sessions:
            mine = next((s for s in snap.sessions if s["held_by"] == me and s["held_host"] == cs.host_name()), None)
            open_ = next((s for s in snap.sessions if s["status"] != "closed"), None)
            chosen = mine or open_ or snap.sessions[0]
            self._session_id = chosen["id"]
            self.refresh_soon()
        self.session_box.blockSignals(True)
        self.session_box.clear()
        for s in snap.sessions:
            who = f" · {s['held_by']}" if s["held_by"] else ""
            self.session_box.addItem(
                f"#{s['id']} shift {s['shift']} · {s['status']}{who} · {s['steps_finished']}/{s['steps']} steps", s["id"])
        if not snap.sessions:
            self.session_box.addItem("no session today for this station — plan captures first", None)
        index = self.session_box.findData(self._session_id)
        self.session_box.setCurrentIndex(max(0, index))
        self.session_box.blockSignals(False)

    def refresh_soon(self) -> None:
        QTimer.singleShot(0, self.refresh)

    def _technician_entered(self) -> None:
        self._settings.setValue("today/technician", self.technician_name)
        self.refresh()

    def _scanner_chosen(self, _index: int) -> None:
        if self._held:
            self.release()
        self._settings.setValue("today/scanner", self.scanner)
        self._session_id = None
        self.refresh()

    def _session_chosen(self, _index: int) -> None:
        session_id = self.session_box.currentData()
        if session_id != self._session_id:
            if self._held:
                self.release()
            self._session_id = session_id
            self.refresh()

    # -- showing ------------------------------------------------------------------

    def _show_session(self, snap: TodaySnapshot) -> None:
        view = snap.view
        s = view.session if view else None
        self._held = bool(s and s["held_by"] == self.technician_name and s["held_host"] == cs.host_name())
        if self._held and not self._heartbeat.isActive():
            self._heartbeat.start()
        elif not self._held:
            self._heartbeat.stop()
        running = self._held and s["status"] == "open"
        self.start_button.setEnabled(bool(s) and s["status"] != "closed" and not self._held)
        self.start_button.setText("Resume session" if s and s["started_at"] else "Start session")
        self.release_button.setEnabled(self._held)
        self.close_button.setEnabled(running)
        self.print_button.setEnabled(bool(s))
        for widget in (self.scan_field, self.skip_button, self.flag_button, self.undo_button, self.retake_button):
            widget.setEnabled(running)
        waiting = len(view.waiting) if view else 0
        self.waiting_button.setEnabled(running and waiting > 0)
        self.waiting_button.setText(f"Take {waiting} waiting image(s) (F5)" if waiting else "Take waiting images (F5)")
        if view is None:
            self._show_step(None)
            self.progress.setValue(0)
            self.progress_label.setText("")
            self.next_list.clear()
            self.thumbs.clear()
            return
        active = view.active
        if active is None and not running and view.upcoming(1):
            self._show_step(view.upcoming(1)[0], view, False)
            self.step_title.setText(f"Next: step {view.upcoming(1)[0]['position']} of {len(view.steps)} — "
                                    f"press {self.start_button.text()}")
        else:
            self._show_step(active, view, running)

        wanted = max(1, view.images_wanted)
        self.progress.setMaximum(wanted)
        self.progress.setValue(view.images_done)
        self.progress.setFormat(f"{view.images_done} / {view.images_wanted} images")
        finished = sum(1 for st in view.steps if st["status"] in ("done", "skipped"))
        skipped = sum(1 for st in view.steps if st["status"] == "skipped")
        holder = f"run by {s['held_by']} at {s['held_host']}" if s["held_by"] else "nobody is running it"
        self.progress_label.setText(
            f"{finished} of {len(view.steps)} steps finished ({skipped} skipped) · {s['scanner']} · "
            f"{s['session_date']} · {holder}")
        self.next_list.clear()
        previous = view.active
        for st in view.upcoming(8):
            what = f"{st['item']} ({st['class_name']})" if st["item"] else "no item (clean bag)"
            change = "repack: " if previous is None or previous["bag_id"] != st["bag_id"] else ""
            pose = f" · {st['pose']}" if st["pose"] else ""
            self.next_list.addItem(f"{st['position']}. {change}{st['bag']} · {what}{pose} · {st['images_wanted']} image(s)")
            previous = st
        self._show_thumbs(snap.recent)
        if running and not self.scan_field.hasFocus() and self.isVisible():
            self.scan_field.setFocus()

    @staticmethod
    def _to_scan(step: dict[str, Any]) -> str:
        if step["item"] is None:
            return f"scan bag {step['bag']}" + (" once the item is out" if step["bag_scanned_at"] else "")
        if step["bag_scanned_at"]:
            return f"bag {step['bag']} stays in; scan item {step['item']}"
        return f"scan bag {step['bag']} and item {step['item']}"

    def _show_step(self, step: dict[str, Any] | None, view: cs.SessionView | None = None, running: bool = False) -> None:
        if step is None:
            done = view is not None and view.finished
            self.step_title.setText("Session finished — close it" if done else
                                    ("No step" if view else "Choose a station and session"))
            for label in (self.split_badge, self.bag_label, self.item_label, self.bag_mark, self.item_mark,
                          self.pose_label, self.count_label, self.flag_label):
                label.setText("")
            self.diagram.set_pose(None, None, None, clean=True)
            return
        total = len(view.steps) if view else 0
        self.step_title.setText(f"Step {step['position']} of {total}")
        self.split_badge.setText(step["split"].upper())
        self.split_badge.setStyleSheet("color: white; background: %s; padding: 2px 10px; border-radius: 6px;"
                                       % ("#6a1b9a" if step["split"] == "test" else "#00695c"))
        bag_ok = step["confirmed_at"] is not None or (step["bag_scanned_at"] is not None and step["item"] is not None)
        self.bag_mark.setText("✔" if bag_ok else "☐")
        self.bag_label.setText(f"Bag {step['bag']}  ({step['luggage_type'].replace('_', ' ')}, {step['clutter']} clutter)")
        if step["item"]:
            item_ok = step["item_scanned_at"] is not None or step["confirmed_at"] is not None
            self.item_mark.setText("✔" if item_ok else "☐")
            self.item_label.setText(f"Item {step['item']}  ({step['class_name']})")
            self.pose_label.setText(f"Pose: {step['pose']}" + (f" — {step['pose_description']}" if step["pose_description"] else ""))
        else:
            self.item_mark.setText("")
            self.item_label.setText("No item: clean bag")
            self.pose_label.setText("")
        self.diagram.set_pose(step["placement"], step["rotation_deg"], step["occlusion"], clean=not step["item"])
        self.count_label.setText(f"{step['images_done']} / {step['images_wanted']}\nimages")
        confirmed = step["confirmed_at"] is not None
        colour = "#1b5e20" if confirmed else "#e65100"
        self.count_label.setStyleSheet(f"color: {colour};")
        flag = f"⚑ {step['flag_reason']}" if step["flag_reason"] else ""
        state = "Tags confirmed — scan the images." if confirmed else _sentence(self._to_scan(step))
        self.flag_label.setText(f"{state}  {flag}" if running else flag)

    def _show_thumbs(self, recent: list[dict[str, Any]]) -> None:
        selected = self._selected_image()
        self.thumbs.clear()
        for image in recent:
            pixmap = QPixmap(str(self._lab.paths.store / image["thumb_path"])) if image["thumb_path"] else QPixmap()
            text = f"step {image['position']}" + ("" if image["usable"] else " · retake")
            item = QListWidgetItem(QIcon(pixmap), text)
            item.setData(Qt.ItemDataRole.UserRole, image)
            item.setToolTip(f"image #{image['id']} · {image['original_name']}\ncaptured {image['captured_at']}"
                            + (f"\nflags: {image['quality_flags']}" if image["quality_flags"] else ""))
            if not image["usable"]:
                item.setForeground(Qt.GlobalColor.gray)
            self.thumbs.addItem(item)
            if selected and selected["id"] == image["id"]:
                item.setSelected(True)

    def _selected_image(self) -> dict[str, Any] | None:
        items = self.thumbs.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _say(self, text: str, style: str = INFO_STYLE) -> None:
        self.feedback.setText(text)
        self.feedback.setStyleSheet(style)

    # -- actions: one at a time, in order ----------------------------------------------

    def _run(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._actions.append((work, done))
        self._next_action()

    def _act(self, work: Callable[[int, str], Any], done: Callable[[Any], None]) -> None:
        """Run ``work(session_id, technician)`` for the session shown, as of now."""
        session_id, who = self._session_id, self.technician_name
        if session_id is not None:
            self._run(lambda: work(session_id, who), done)

    def _next_action(self) -> None:
        if self._busy or not self._actions:
            return
        self._busy = True
        work, done = self._actions.popleft()

        def finished(result: Any) -> None:
            self._busy = False
            done(result)
            self.refresh()
            self._next_action()

        def failed(exc: BaseException) -> None:
            self._busy = False
            if isinstance(exc, cs.SessionError):
                self._say(str(exc), BAD_STYLE)
            else:
                show_error(self, "Capture session", exc)
            self.refresh()
            self._next_action()

        tasks.call(work, finished, failed, self)

    def start(self, take_over: bool = False) -> None:
        session_id, who = self._session_id, self.technician_name
        if session_id is None:
            return
        if not who:
            self._say("Enter your name first.", BAD_STYLE)
            self.technician.setFocus()
            return
        self._settings.setValue("today/technician", who)

        def work():
            try:
                return cs.start_session(self._lab, session_id, who, take_over=take_over)
            except cs.SessionBusyError as exc:
                return exc

        def done(result):
            if isinstance(result, cs.SessionBusyError):
                if "take it over" in str(result) and QMessageBox.question(
                        self, "Take over session", f"{result}.\n\nTake it over as {who}?") == QMessageBox.StandardButton.Yes:
                    self.start(take_over=True)
                else:
                    self._say(str(result), BAD_STYLE)
                return
            active = result.active
            self._say(f"Session #{session_id} is yours, {who}. " +
                      (f"Step {active['position']}: scan the bag tag." if active else "Every step is finished."), OK_STYLE)

        self._run(work, done)

    def release(self) -> None:
        session_id, who = self._session_id, self.technician_name
        if session_id is None or not self._held:
            return
        self._held = False
        self._heartbeat.stop()
        self._run(lambda: cs.release_session(self._lab, session_id, who),
                  lambda _: self._say(f"Left session #{session_id}; it stays open for anyone to resume."))

    def _beat(self) -> None:
        session_id, who = self._session_id, self.technician_name
        if session_id is None or not self._held:
            return

        def failed(exc: BaseException) -> None:
            self._held = False
            self._heartbeat.stop()
            self._say(str(exc), BAD_STYLE)
            self.refresh()

        tasks.call(lambda: cs.heartbeat(self._lab, session_id, who), lambda _: None, failed, self)

    def scan(self, code: str) -> None:
        """A tag from the barcode scanner (or typed)."""
        session_id, who = self._session_id, self.technician_name
        if session_id is None or not code.strip():
            return

        def done(result: cs.ScanResult) -> None:
            self._say(result.message, OK_STYLE if result.accepted else BAD_STYLE)
            if not result.accepted:
                QApplication.beep()
            self.scan_answered.emit(result)

        self._run(lambda: cs.scan_barcode(self._lab, session_id, code, who), done)

    def _scanned(self) -> None:
        code = self.scan_field.text()
        self.scan_field.clear()
        self.scan(code)

    def _skip(self) -> None:
        if not self.skip_button.isEnabled():
            return
        labels = list(cs.SKIP_REASONS.values())
        reason, ok = QInputDialog.getItem(self, "Skip step", "Why is this step skipped?", labels, 0, False)
        if not ok:
            return
        code = next(k for k, v in cs.SKIP_REASONS.items() if v == reason)
        note, ok = QInputDialog.getText(self, "Skip step", "Note (what happened; required for 'other'):")
        if not ok:
            return
        self.skip(code, note)

    def skip(self, reason: str, note: str = "") -> None:
        self._act(lambda sid, who: cs.skip_step(self._lab, sid, reason, who, note),
                  lambda nxt: self._say(f"Step skipped ({cs.SKIP_REASONS[reason]}).", INFO_STYLE))

    def _flag(self) -> None:
        if not self.flag_button.isEnabled():
            return
        text, ok = QInputDialog.getText(self, "Flag a problem", "What is wrong with this step?")
        if ok and text.strip():
            self.flag(text)

    def flag(self, text: str) -> None:
        self._act(lambda sid, who: cs.flag_step(self._lab, sid, text, who),
                  lambda _: self._say(f"Flagged: {text}", INFO_STYLE))

    def _take_waiting(self) -> None:
        if not self.waiting_button.isEnabled():
            return
        self._act(lambda sid, who: cs.assign_waiting(self._lab, sid, who),
                  lambda ids: self._say(f"{len(ids)} waiting image(s) joined this step.", OK_STYLE))

    def _retake(self) -> None:
        image = self._selected_image() or next(
            (img for img in (self._snapshot.recent if self._snapshot else []) if img["usable"]), None)
        if image is None or not self.retake_button.isEnabled():
            return
        self.retake(image["id"])

    def retake(self, image_id: int) -> None:
        self._act(lambda sid, who: cs.retake_image(self._lab, sid, image_id, who),
                  lambda _: self._say(f"Image #{image_id} set aside; its step takes one more.", INFO_STYLE))

    def _move_selected(self) -> None:
        image = self._selected_image()
        view = self._snapshot.view if self._snapshot else None
        if image is None or view is None:
            return
        choices = ["(no step: unassigned)"] + [
            f"{st['position']}. {st['bag']} · {st['item'] or 'clean'} · {st['pose'] or '—'}" for st in view.steps]
        choice, ok = QInputDialog.getItem(self, "Move image", f"Move image #{image['id']} to:", choices, 0, False)
        if ok:
            index = choices.index(choice)
            self.move(image["id"], None if index == 0 else view.steps[index - 1]["id"])

    def move(self, image_id: int, step_id: int | None) -> None:
        self._act(lambda sid, who: cs.reassign_image(self._lab, sid, image_id, step_id, who),
                  lambda _: self._say(f"Image #{image_id} moved.", INFO_STYLE))

    def undo(self) -> None:
        if not self.undo_button.isEnabled():
            return
        self._act(lambda sid, who: cs.undo_last(self._lab, sid, who), lambda text: self._say(f"Undone: {text}", INFO_STYLE))

    def _close_session(self) -> None:
        view = self._snapshot.view if self._snapshot else None
        if view is None:
            return
        left = sum(1 for st in view.steps if st["status"] in ("pending", "active"))
        note = f"\n\n{left} step(s) are not done; the next plan plans them again." if left else ""
        if QMessageBox.question(self, "Close session", f"Close session #{self._session_id}?{note}") \
                != QMessageBox.StandardButton.Yes:
            return
        self.close_session()

    def close_session(self) -> None:
        session_id, who = self._session_id, self.technician_name
        self._held = False
        self._heartbeat.stop()
        self._run(lambda: cs.close_session(self._lab, session_id, who),
                  lambda counts: self._say(f"Session #{session_id} closed.", OK_STYLE))

    def _print(self) -> None:
        if self._session_id is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save checklist", f"session-{self._session_id}.pdf", "PDF (*.pdf)")
        if path:
            self.print_checklist(path)

    def print_checklist(self, path: str) -> None:
        from core.capture.checklist import write_checklist

        session_id = self._session_id
        self._run(lambda: write_checklist(self._lab, session_id, path),
                  lambda written: self._say(f"Checklist saved: {written}", OK_STYLE))

    def _next_session(self) -> None:
        snap = self._snapshot
        if not snap or not snap.sessions:
            return
        ids = [s["id"] for s in snap.sessions if s["status"] != "closed"]
        if ids:
            later = [i for i in ids if self._session_id is None or i > self._session_id]
            self.session_box.setCurrentIndex(self.session_box.findData((later or ids)[0]))

    def shutdown(self) -> None:
        """Window closing: let go of the session (it stays open for anyone to resume)."""
        self._heartbeat.stop()
        if self._held and self._session_id is not None:
            try:
                cs.release_session(self._lab, self._session_id, self.technician_name)
            except Exception:  # noqa: BLE001 - a heartbeat timeout frees it anyway
                pass
            self._held = False

