"""Today: the technician's checklist for this station.

The current step big and clear (bag, item, pose drawing, images done /
wanted), ONE current instruction, a status line that answers every scan and
key, the next steps, the session's progress and its newest images. A USB
barcode scanner types into the always-focused scan field like a keyboard and
ends with Enter; Enter never confirms anything destructive (dialogs default to
Cancel). Keyboard first: F2 skip, F3 flag, F5 take waiting images, F6 retake
the current step's newest (or selected) image, Ctrl+Z undo, Ctrl+P print, F4
next session.

The checklist's rules (what is shown, what must be scanned, what is enabled
and why not) live in :mod:`core.capture.checklist_state`; this view shows
its state and hands it the keys.

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
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import tasks
from app.dialogs import announce_saved, choose_save_path, confirm_destructive, show_error
from app.views.area import AreaView
from app.views.checklist_dialogs import MoveImageDialog, StepReasonDialog
from app.views.pose_diagram import PoseDiagram
from core.capture import sessions as cs
from core.capture.checklist_state import Checklist, ChecklistState, Outcome, next_session
from core.lab import Lab

# Names shown on the checklist (bags, items, classes, poses, scanners) count too.
RELEVANT = ("capture_sessions", "capture_steps", "images", "split_pools", "scanners", "bags", "luggage_types",
            "threat_items", "threat_classes", "poses")
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
    state: ChecklistState


def load_today(lab: Lab, scanner: str | None, session_id: int | None, technician: str = "") -> TodaySnapshot:
    scanners = cs.scanners(lab)
    sessions = cs.list_sessions(lab, scanner=scanner) if scanner else []
    if session_id not in {s["id"] for s in sessions}:
        session_id = None
    view = cs.session_view(lab, session_id) if session_id else None
    recent = cs.recent_images(lab, session_id, THUMBS) if session_id else []
    return TodaySnapshot(scanners, sessions, view, recent, ChecklistState(view, technician.strip(), cs.host_name()))


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
        self._generation = 0  # of refreshes started, to tell snapshots from before and after an action
        self._status_from = 0  # the first refresh generation that shows the state after the last answer
        self._status_step: tuple | None = None  # what the status line was about; it goes when that changes

        # -- top bar: who, where, which session --
        self.scanner_box = QComboBox()
        self.scanner_box.setMinimumWidth(170)
        who = lab.catalog.identity
        signed = who.name if who is not None and who.role else ""  # a lab with users: who signed in
        self.technician = QLineEdit(signed or self._settings.value("today/technician", "") or getpass.getuser())
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
        self.instruction = _big("", 17)
        self.instruction.setWordWrap(True)
        self.instruction.setMinimumHeight(36)
        self.diagram = PoseDiagram()
        self.scan_field = ScanField()
        self.scan_field.setPlaceholderText("Scan tags here (or type a tag and press Enter)")
        font = self.scan_field.font()
        font.setPointSize(16)
        self.scan_field.setFont(font)
        self.scan_field.setMinimumHeight(44)
        self.feedback = QLabel("")
        self.feedback.setWordWrap(True)
        self.feedback.setMinimumHeight(34)  # one line of 13 pt and its padding
        font = self.feedback.font()
        font.setPointSize(13)
        self.feedback.setFont(font)

        card = QFrame()
        card.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(card)
        # Tight rows: the whole checklist fits a 1366x768 screen under the menu bar.
        grid.setContentsMargins(10, 6, 10, 6)
        grid.setVerticalSpacing(3)
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
        retake_action.triggered.connect(self._retake_selected)
        self.thumbs.addAction(retake_action)
        self.thumbs.addAction(move_action)

        left = QVBoxLayout()
        left.addWidget(card, 1)
        left.addWidget(self.instruction)
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
        layout.setContentsMargins(9, 6, 9, 6)
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
        slots = (self._skip, self._flag, self.next_session, self._take_waiting, self._retake, self.undo, self._print)
        for keys, slot in zip(SHORTCUTS, slots):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        self._heartbeat = QTimer(self)
        self._heartbeat.setInterval(int(cs.HEARTBEAT_S * 1000))
        self._heartbeat.timeout.connect(self._beat)
        self._tips = {button: button.toolTip() for button in self._buttons().values()}
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

    def _buttons(self) -> dict[str, QPushButton]:
        return {"start": self.start_button, "release": self.release_button, "close": self.close_button,
                "print": self.print_button, "skip": self.skip_button, "flag": self.flag_button,
                "take_waiting": self.waiting_button, "retake": self.retake_button, "undo": self.undo_button}

    @property
    def state(self) -> ChecklistState | None:
        return self._snapshot.state if self._snapshot else None

    # -- data ------------------------------------------------------------------

    def refresh(self) -> None:
        if self._loading:
            self._stale = True
            return
        self._loading = True
        self._stale = False
        self._generation += 1
        generation = self._generation
        scanner, session_id, who = (self.scanner or self._settings.value("today/scanner", None), self._session_id,
                                    self.technician_name)
        tasks.call(lambda: load_today(self._lab, scanner, session_id, who),
                   lambda snap: self._loaded(snap, generation), self._load_failed, self)

    def _load_failed(self, exc: BaseException) -> None:
        self._loading = False
        show_error(self, "Could not read today's sessions", exc)

    def _loaded(self, snap: TodaySnapshot, generation: int = 0) -> None:
        self._loading = False
        self._fill_scanners(snap)
        self._fill_sessions(snap)
        if snap.view is not None and snap.view.session["id"] != self._session_id:
            snap = TodaySnapshot(snap.scanners, snap.sessions, None, [],
                                 ChecklistState(None, self.technician_name, cs.host_name()))
        self._snapshot = snap
        self._show_session(snap)
        self._age_status(snap.state, generation)
        if self._stale:
            self.refresh()
        else:
            self.loaded.emit()

    def _age_status(self, state: ChecklistState, generation: int) -> None:
        """The status line answers the last key; once the checklist has moved on
        (an image completed the step, someone else acted) it would contradict the
        instruction, so it goes."""
        if generation < self._status_from or self._busy or self._actions:
            return
        where = (state.session["id"] if state.session else None, state.phase, state.step["id"] if state.step else None)
        if self._status_step is None:
            self._status_step = where
        elif where != self._status_step and self.feedback.text():
            self._say("")

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
        view, state = snap.view, snap.state
        s = view.session if view else None
        self._held = state.held
        if self._held and not self._heartbeat.isActive():
            self._heartbeat.start()
        elif not self._held:
            self._heartbeat.stop()
        running = state.running
        for name, button in self._buttons().items():
            allowed = state.action(name)
            button.setEnabled(allowed.enabled)
            button.setToolTip(self._tips[button] if allowed.enabled else allowed.why_not)
        self.start_button.setText(state.start_label)
        # The scan field stays on so a scanned tag always lands here and is answered.
        self.scan_field.setEnabled(view is not None)
        self.scan_field.setToolTip("" if state.action("scan").enabled else state.action("scan").why_not)
        waiting = len(view.waiting) if view else 0
        self.waiting_button.setText(f"Take {waiting} waiting image(s) (F5)" if waiting else "Take waiting images (F5)")
        self.instruction.setText(state.instruction)
        if view is None:
            self._show_step(None)
            self.progress.setValue(0)
            self.progress_label.setText("")
            self.next_list.clear()
            self.thumbs.clear()
            return
        self._show_step(state.step, view, state)

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
        previous = state.step
        for st in view.upcoming(9):
            if state.step is not None and st["id"] == state.step["id"]:
                continue
            what = f"{st['item']} ({st['class_name']})" if st["item"] else "no item (clean bag)"
            change = "repack: " if previous is None or previous["bag_id"] != st["bag_id"] else ""
            pose = f" · {st['pose']}" if st["pose"] else ""
            self.next_list.addItem(f"{st['position']}. {change}{st['bag']} · {what}{pose} · {st['images_wanted']} image(s)")
            previous = st
        self._show_thumbs(snap.recent)
        if running and not self.scan_field.hasFocus() and self.isVisible():
            self.scan_field.setFocus()

    def _show_step(self, step: dict[str, Any] | None, view: cs.SessionView | None = None,
                   state: ChecklistState | None = None) -> None:
        if step is None:
            done = view is not None and view.finished
            self.step_title.setText(f"All {len(view.steps)} steps finished" if done else
                                    ("No step" if view else "Choose a station and session"))
            for label in (self.split_badge, self.bag_label, self.item_label, self.bag_mark, self.item_mark,
                          self.pose_label, self.count_label, self.flag_label):
                label.setText("")
            self.diagram.set_pose(None, None, None, clean=True)
            return
        total = len(view.steps) if view else 0
        preview = state is not None and state.preview
        self.step_title.setText(f"{'Next: step' if preview else 'Step'} {step['position']} of {total}")
        self.split_badge.setText(step["split"].upper())
        self.split_badge.setStyleSheet("color: white; background: %s; padding: 2px 10px; border-radius: 6px;"
                                       % ("#6a1b9a" if step["split"] == "test" else "#00695c"))
        need = state.need if state is not None and not preview else ("bag", "item")
        self.bag_mark.setText("☐" if "bag" in need else "✔")
        self.bag_label.setText(f"Bag {step['bag']}  ({step['luggage_type'].replace('_', ' ')}, {step['clutter']} clutter)")
        if step["item"]:
            self.item_mark.setText("☐" if "item" in need else "✔")
            self.item_label.setText(f"Item {step['item']}  ({step['class_name']})")
            self.pose_label.setText(f"Pose: {step['pose']}" + (f" — {step['pose_description']}" if step["pose_description"] else ""))
        else:
            self.item_mark.setText("")
            self.item_label.setText("No item: clean bag")
            self.pose_label.setText("")
        self.diagram.set_pose(step["placement"], step["rotation_deg"], step["occlusion"], clean=not step["item"],
                              name=step["pose"], description=step["pose_description"])
        self.count_label.setText(f"{step['images_done']} / {step['images_wanted']}\nimages")
        colour = "#1b5e20" if not need else "#e65100"
        self.count_label.setStyleSheet(f"color: {colour};")
        self.flag_label.setText(f"⚑ {step['flag_reason']}" if step["flag_reason"] else "")

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
        self.feedback.setStyleSheet(style if text else "")

    def _answer(self, outcome: Outcome) -> None:
        """Show what a scan or key did (or why it did nothing) in the status line."""
        self._say(outcome.message, OK_STYLE if outcome.ok else BAD_STYLE)
        self._status_step = None
        self._status_from = self._generation + 1

    def _refuse(self, action: str) -> bool:
        """A key whose action is off right now: say why (True) instead of doing nothing."""
        state = self.state
        allowed = state.action(action) if state else None
        if allowed is not None and allowed.enabled:
            return False
        self._answer(Outcome(False, allowed.why_not if allowed else "Today's sessions are still loading."))
        QApplication.beep()
        return True

    # -- actions: one at a time, in order ----------------------------------------------

    def _checklist(self) -> Checklist:
        return Checklist(self._lab, self.technician_name)

    def _run(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._actions.append((work, done))
        self._next_action()

    def _act(self, work: Callable[[Checklist, int | None], Outcome], done: Callable[[Outcome], None] | None = None
             ) -> None:
        """Run ``work(checklist, session_id)`` for the session shown, as of now, and answer with its outcome."""
        checklist, session_id = self._checklist(), self._session_id

        def answered(outcome: Outcome) -> None:
            self._answer(outcome)
            if done is not None:
                done(outcome)

        self._run(lambda: work(checklist, session_id), answered)

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
                self._answer(Outcome(False, str(exc)))
            else:
                show_error(self, "Capture session", exc)
            self.refresh()
            self._next_action()

        tasks.call(work, finished, failed, self)

    def start(self, take_over: bool = False) -> None:
        who = self.technician_name
        if not who:
            self._answer(Outcome(False, "Enter your name first."))
            self.technician.setFocus()
            return
        self._settings.setValue("today/technician", who)

        def done(outcome: Outcome) -> None:
            error = outcome.error
            if isinstance(error, cs.SessionHeldError) and error.can_take_over and not take_over:
                confirm_destructive(
                    self, "Take over session", f"{outcome.message}", f"Take over as {who}",
                    lambda: self.start(take_over=True),
                    f"{error.holder} at {error.host} will no longer be able to record steps in it.")

        self._act(lambda c, sid: c.start(sid, take_over), done)

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        self._heartbeat.stop()
        self._act(lambda c, sid: c.release(sid))

    def _beat(self) -> None:
        session_id, who = self._session_id, self.technician_name
        if session_id is None or not self._held:
            return

        def failed(exc: BaseException) -> None:
            self._held = False
            self._heartbeat.stop()
            self._answer(Outcome(False, str(exc), error=exc))
            self.refresh()

        tasks.call(lambda: cs.heartbeat(self._lab, session_id, who), lambda _: None, failed, self)

    def scan(self, code: str) -> None:
        """A tag from the barcode scanner (or typed); always answered."""
        def done(outcome: Outcome) -> None:
            if not outcome.ok:
                QApplication.beep()
            result = outcome.result if isinstance(outcome.result, cs.ScanResult) else \
                cs.ScanResult(False, outcome.message, False)
            self.scan_answered.emit(result)

        self._act(lambda c, sid: c.scan(sid, code), done)

    def _scanned(self) -> None:
        code = self.scan_field.text()
        self.scan_field.clear()
        self.scan(code)

    def _skip(self) -> StepReasonDialog | None:
        if self._refuse("skip"):
            return None
        dialog = StepReasonDialog(self, "Skip step", "Why is this step skipped?", "&Skip step", cs.SKIP_REASONS,
                                  "Note (what happened; required for 'other'):")
        dialog.confirmed.connect(self.skip)
        dialog.rejected.connect(lambda: self._answer(Outcome(False, "Skip cancelled; the step stays.")))
        dialog.open()
        return dialog

    def skip(self, reason: str, note: str = "") -> None:
        self._act(lambda c, sid: c.skip(sid, reason, note))

    def _flag(self) -> StepReasonDialog | None:
        if self._refuse("flag"):
            return None
        dialog = StepReasonDialog(self, "Flag a problem", "What is wrong with this step?", "&Flag step",
                                  note_required=True)
        dialog.confirmed.connect(lambda _reason, text: self.flag(text))
        dialog.rejected.connect(lambda: self._answer(Outcome(False, "Nothing flagged.")))
        dialog.open()
        return dialog

    def flag(self, text: str) -> None:
        self._act(lambda c, sid: c.flag(sid, text))

    def _take_waiting(self) -> None:
        if self._refuse("take_waiting"):
            return
        self._act(lambda c, sid: c.take_waiting(sid))

    def _retake(self) -> None:
        """F6: the current step's selected (or newest) image; core says why when there is none."""
        image = self._selected_image()
        self.retake(image["id"] if image else None)

    def retake(self, image_id: int | None = None) -> None:
        self._act(lambda c, sid: c.retake(sid, image_id))

    def _retake_selected(self) -> None:
        image = self._selected_image()
        if image is None:
            self._answer(Outcome(False, "Select an image first (click its thumbnail)."))
            return
        self._act(lambda c, sid: c.retake_image(sid, image["id"]))

    def _move_selected(self) -> "MoveImageDialog | None":
        image = self._selected_image()
        view = self._snapshot.view if self._snapshot else None
        if image is None or view is None:
            self._answer(Outcome(False, "Select an image first (click its thumbnail)."))
            return
        choices = ["(no step: unassigned)"] + [
            f"{st['position']}. {st['bag']} · {st['item'] or 'clean'} · {st['pose'] or '—'}" for st in view.steps]
        dialog = MoveImageDialog(self, image["id"], choices)
        steps = [st["id"] for st in view.steps]
        dialog.chosen.connect(lambda index: self.move(image["id"], None if index == 0 else steps[index - 1]))
        dialog.open()
        return dialog

    def move(self, image_id: int, step_id: int | None) -> None:
        self._act(lambda c, sid: c.move(sid, image_id, step_id))

    def undo(self) -> None:
        if self._refuse("undo"):
            return
        self._act(lambda c, sid: c.undo(sid))

    def _close_session(self) -> QWidget | None:
        """Ask first; Cancel is the default, so a scanner's Enter never closes the session."""
        view = self._snapshot.view if self._snapshot else None
        if view is None or self._refuse("close"):
            return None
        left = sum(1 for st in view.steps if st["status"] in ("pending", "active"))
        note = f"{left} step(s) are not done; the next plan plans them again." if left else ""
        return confirm_destructive(self, "Close session", f"Close session #{self._session_id}?", "Close session",
                                   self.close_session, note)

    def close_session(self) -> None:
        self._held = False
        self._heartbeat.stop()
        self._act(lambda c, sid: c.close(sid))

    def _print(self) -> QFileDialog | None:
        if self._refuse("print"):
            return None
        dialog = choose_save_path(self, "Save checklist", f"session-{self._session_id}.pdf", "PDF (*.pdf)",
                                  "checklists", self.print_checklist, self._settings)
        dialog.rejected.connect(lambda: self._answer(Outcome(False, "Checklist not saved.")))
        return dialog

    def print_checklist(self, path: str) -> None:
        """Write the session's checklist PDF off the GUI thread; say where once written."""
        from core.capture.checklist import write_checklist

        session_id = self._session_id

        def written(path) -> None:
            self._answer(Outcome(True, f"Checklist saved: {path}"))
            announce_saved(self, path)

        self._run(lambda: write_checklist(self._lab, session_id, path), written)

    def next_session(self) -> None:
        """F4: the next open session of this station (answered either way)."""
        snap = self._snapshot
        outcome = next_session(snap.sessions if snap else [], self._session_id)
        self._answer(outcome)
        if outcome.ok:
            self.session_box.setCurrentIndex(self.session_box.findData(outcome.session_id))

    def shutdown(self) -> None:
        """Window closing: let go of the session (it stays open for anyone to resume)."""
        self._heartbeat.stop()
        if self._held and self._session_id is not None:
            try:
                cs.release_session(self._lab, self._session_id, self.technician_name)
            except Exception:  # noqa: BLE001 - a heartbeat timeout frees it anyway
                pass
            self._held = False
