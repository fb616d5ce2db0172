"""Turns catalog changes into a Qt signal on the GUI thread.

Writes made in this process arrive through ``Catalog.subscribe`` (called on
the writing thread, relayed here as a queued signal). Writes from other
processes (ingest, a CLI, another workstation) are polled with
``Catalog.outside_change``, which costs microseconds when nothing changed and
names exactly the tables that did, so views that show none of them stay put.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from core.catalog import Catalog, Change

POLL_MS = 1000


class CatalogWatcher(QObject):
    changed = Signal(object)  # core.catalog.Change; GUI thread
    _arrived = Signal(object)

    def __init__(self, catalog: Catalog, parent: QObject | None = None, poll_ms: int = POLL_MS):
        super().__init__(parent)
        self._catalog = catalog
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = catalog.subscribe(self._on_change)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._timer.start(poll_ms)

    def _on_change(self, change: Change) -> None:
        # Any thread: the queued private signal brings the change to the GUI
        # thread, where ``changed`` is emitted to the views directly.
        self._arrived.emit((change,))

    @Slot(object)
    def _deliver(self, wrapped: tuple) -> None:
        self.changed.emit(wrapped[0])

    def _poll(self) -> None:
        # Only other programs' writes: this process's are announced already.
        change = self._catalog.outside_change()
        if change is not None:
            self.changed.emit(change)

    def stop(self) -> None:
        self._timer.stop()
        self._unsubscribe()
