"""Turns catalog changes into a Qt signal on the GUI thread.

Writes made in this process arrive through ``Catalog.subscribe`` (called on
the writing thread, relayed here as a queued signal). Writes from other
processes (ingest, a CLI) are noticed by polling ``PRAGMA data_version`` on
the writer connection, which costs microseconds and ignores this process's
own commits.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from core.catalog import Catalog, Change

POLL_MS = 1000
ANY_TABLE = frozenset({"*"})


class CatalogWatcher(QObject):
    changed = Signal(object)  # core.catalog.Change; tables {"*"} when another process wrote; GUI thread
    _arrived = Signal(object)

    def __init__(self, catalog: Catalog, parent: QObject | None = None):
        super().__init__(parent)
        self._catalog = catalog
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = catalog.subscribe(self._on_change)
        self._version = catalog.outside_version()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._poll)
        self._timer.start(POLL_MS)

    def _on_change(self, change: Change) -> None:
        # Any thread: the queued private signal brings the change to the GUI
        # thread, where ``changed`` is emitted to the views directly.
        self._arrived.emit((change,))

    @Slot(object)
    def _deliver(self, wrapped: tuple) -> None:
        self.changed.emit(wrapped[0])

    def _poll(self) -> None:
        # Only another program's writes: this process's are announced already.
        version = self._catalog.outside_version()
        if version is not None and version != self._version:
            self._version = version
            self.changed.emit(Change(ANY_TABLE, "changed by another program"))

    def stop(self) -> None:
        self._timer.stop()
        self._unsubscribe()
